"""Helpers shared by the distributed Map modules (map_run, item_reader, result_writer).

paths.py is imported at call time (it imports the intrinsic functions, which are not needed to
load or validate a definition).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from burstmap.local.core.errors import InvalidDefinition, StateRuntimeError, StatesError, UnsupportedFeature

__all__ = ["InvalidDefinition", "UnsupportedFeature"]

"""A state's input or output, and a child execution's input, hold at most 256 KiB."""


def states_error(error: str, cause: str | None) -> StatesError:
    """An ASL error (name + cause) as the engine's StatesError, which Retry and Catch match."""
    return StatesError(error, cause)


def is_states_error(exc: BaseException) -> bool:
    """True for an ASL error raised by a child execution (anything carrying an `error` name)."""
    return isinstance(exc, StatesError) or isinstance(getattr(exc, "error", None), str)


def runtime_error(state_name: str, detail: str, context: dict[str, Any] | None = None) -> StateRuntimeError:
    """`States.Runtime`; the state runner prefixes the cause with AWS's "An error occurred while
    executing the state 'X' (entered at the event id #N)." (state_name and context are kept for
    the callers' readability and future use)."""
    return StateRuntimeError(detail)


def read_path(path: str, data: Any, context: dict[str, Any]) -> Any:
    """JSONPath reference path ("$..." or "$$..."), evaluated by paths.py."""
    from burstmap.local.query import jsonpath as paths

    return paths.read_path(path, data, context)


def resolve_template(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """Payload template (keys ending in ".$"), evaluated by paths.py."""
    from burstmap.local.query import payload_template

    return payload_template.resolve_template(template, data, context)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_json(value: Any) -> str:
    """Compact JSON text, as Step Functions serialises state data (no spaces, UTF-8 kept)."""
    return _COMPACT.encode(value)


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON text of a value: how payload limits are measured."""
    return len(to_json(value).encode("utf-8"))


class BoundedChunk(list):  # type: ignore[type-arg] - items of any JSON type
    """A chunk of items that knows an upper bound on the sum of its items' compact JSON sizes
    (`json_bytes_bound`, bytes), so the batcher can skip measuring batches that surely fit.

    `json_text`, when set, is the items' compact JSON joined by commas, exactly what `to_json`
    writes between a list's brackets, and each comma in it separates two items (the items are
    numbers or null): the batcher cuts a batch's payload from it instead of encoding the items
    again."""

    json_bytes_bound: int = 0
    json_text: str | None = None


class UnparsedIntegers:
    """Items read but not parsed: `count` JSON integers whose compact text, joined by commas, is
    `json_text`. The item reader hands these out, after checking every line is a canonical JSON
    integer, when all the map needs is the items' text (each batch sent whole as a Lambda payload,
    which the function's runtime parses anyway); `parsed()` gives the items themselves."""

    __slots__ = ("json_text", "count")

    def __init__(self, json_text: str, count: int) -> None:
        self.json_text = json_text
        self.count = count

    def __len__(self) -> int:
        return self.count

    def parsed(self) -> BoundedChunk:
        chunk = BoundedChunk(json.loads("[" + self.json_text + "]"))
        chunk.json_bytes_bound = len(self.json_text) - (self.count - 1)  # exact: the text less its commas
        chunk.json_text = self.json_text
        return chunk


def item_separator_after(text: str, position: int, count: int, width: float) -> int:
    """In a `BoundedChunk.json_text`, the index of the comma ending the `count`-th item from
    `position` (where an item starts), or `len(text)` when that item is the last.

    Commas are counted in C over a guess of where the item ends (`width`: the average characters
    an item takes with its comma), moving on or narrowing the guess, then stepped back over the
    few commas past the one wanted: a few calls per batch instead of splitting the text."""
    need, start, end_of_text = count, position, len(text)
    while True:
        guess = min(end_of_text, start + max(1, int(need * width)))
        found = text.count(",", start, guess)
        if found < need:
            if guess == end_of_text:
                if found != need - 1:
                    raise ValueError(f"the text holds {count - need + found + 1} items, not {count}")
                return end_of_text
            start, need = guess, need - found
        elif found - need < 16:
            for _ in range(found - need + 1):
                guess = text.rfind(",", start, guess)
            return guess
        else:
            width = (guess - start) / found  # too far: a narrower guess, still past `start`


def iso_timestamp(moment: datetime | None = None) -> str:
    """UTC timestamp with milliseconds, e.g. 2025-02-04T01:49:50.099Z (AWS's record format)."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_INTEGER_TEXT = re.compile(r"^-?\d+$")


def value_text(value: Any) -> str:
    """How AWS quotes a resolved value in a runtime error: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


def integer_from_path(field: str, path: str, value: Any, state_name: str, context: dict[str, Any]) -> int:
    """An integer field given through a `...Path`: JSON integers and integer strings are accepted.

    AWS accepted the string "2" for MaxItemsPerBatchPath and refused 1.5 and "NoNumber" with
    `The MaxItemsPath field refers to value "1.5" which is not a valid integer: $.MaxItems`.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    raise runtime_error(
        state_name,
        f'The {field} field refers to value "{value_text(value)}" which is not a valid integer: {path}',
        context,
    )


def float_from_path(field: str, path: str, value: Any, state_name: str, context: dict[str, Any]) -> float:
    """A number field given through a `...Path` (ToleratedFailurePercentagePath)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise runtime_error(
        state_name,
        f'The {field} field refers to value "{value_text(value)}" which is not a valid float: {path}',
        context,
    )


def utf8_length(text: str) -> int:
    """Bytes of a text in UTF-8 (no copy for ASCII text, the common case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))
