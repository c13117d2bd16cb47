"""Helpers shared by the distributed Map modules (map_run, item_reader, result_writer).

The engine's other modules (errors.py, paths.py) are imported lazily, at call time, so the
distributed Map can be built and unit-tested on its own and the package stays importable while
those modules change.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

PAYLOAD_LIMIT_BYTES = 256 * 1024
"""A state's input or output, and a child execution's input, hold at most 256 KiB."""


class UnsupportedFeature(ValueError):
    """A field of a distributed Map state that the local engine does not run, refused at load time."""


class InvalidDefinition(ValueError):
    """A distributed Map field whose value AWS would reject when the state machine is created."""


class _FallbackStatesError(Exception):
    """Used only while burstmap.local.errors does not exist yet (same constructor and attributes)."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


def states_error(error: str, cause: str | None) -> Exception:
    """An ASL error (name + cause) as the engine's StatesError, which Retry and Catch match."""
    try:
        from burstmap.local.errors import StatesError
    except ImportError:  # pragma: no cover - only before errors.py lands
        return _FallbackStatesError(error, cause)
    return StatesError(error, cause)


def is_states_error(exc: BaseException) -> bool:
    """True for an ASL error raised by a child execution (anything carrying an `error` name)."""
    return isinstance(getattr(exc, "error", None), str)


def runtime_error(state_name: str, detail: str, context: dict[str, Any] | None = None) -> Exception:
    """`States.Runtime` with AWS's cause prefix naming the state and its StateEntered event id.

    The event id is read from the context object's `State.EnteredEventId` when the interpreter
    records it; AWS counts ExecutionStarted as 1, so a first state entered is #2.
    """
    event_id = ((context or {}).get("State") or {}).get("EnteredEventId", 2)
    cause = (
        f"An error occurred while executing the state '{state_name}' "
        f"(entered at the event id #{event_id}). {detail}"
    )
    return states_error("States.Runtime", cause)


def read_path(path: str, data: Any, context: dict[str, Any]) -> Any:
    """JSONPath reference path ("$..." or "$$..."), evaluated by paths.py."""
    from burstmap.local import paths

    return paths.read_path(path, data, context)


def resolve_template(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """Payload template (keys ending in ".$"), evaluated by paths.py."""
    from burstmap.local import paths

    return paths.resolve_template(template, data, context)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_json(value: Any) -> str:
    """Compact JSON text, as Step Functions serialises state data (no spaces, UTF-8 kept)."""
    return _COMPACT.encode(value)


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON text of a value: how payload limits are measured."""
    return len(to_json(value).encode("utf-8"))


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
