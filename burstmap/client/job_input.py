"""A job's input on the client side, built and staged once for local runs and runs on AWS alike.

``burstmap run`` reads ``--items`` files and assembles the input of the contract (docs/architecture.md)
here, once, so a local and a remote run accept exactly the same files and build the same input; an items
list too large for an execution input is staged to S3 here too (each backend names the bucket).
Validating the *values* (a negative size, a bad ``items_s3`` URI) is left to the start Lambda, which
fails the execution with ``InvalidInput`` the same way locally and on AWS; only what cannot become an
execution input at all (no item source, two sources, an unreadable file, parameters that are not a
JSON object) is refused here, before anything runs.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from burstmap.runtime.contracts import PARAMETERS_MAX_BYTES, json_size

MAX_INLINE_INPUT_BYTES = 200 * 1024
"""An execution input with an ``items`` list larger than this goes through S3 (``items_s3``): AWS caps
the input at 256 KiB, and the start state adds its own fields."""

STAGED_ITEMS_PREFIX = "items"
"""Where a large ``items`` list is uploaded as JSON Lines (``<prefix>/<uuid>.jsonl``): BurstCompute's
default ``items_prefix``, which the start function is granted to read."""

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class JobInputError(ValueError):
    """The job was described inconsistently (before anything runs); the message says how to fix it."""


class InvalidArgument(JobInputError):
    """One argument is wrong; the message names it as the caller typed it.

    ``str(error)`` is worded for the Python API (``retry_time_scale=inf: must be ...``); the command line
    words it for its option with :meth:`for_option` (``--retry-time-scale inf: must be ...``). ``argument``
    is the Python name, ``value`` what was given, ``problem`` what is wrong and how to fix it.
    """

    def __init__(self, argument: str, value: Any, problem: str) -> None:
        self.argument = argument
        self.value = value
        self.problem = problem
        super().__init__(f"{argument}={_shown(value, _written)}: {problem}")

    def for_option(self, option: str) -> str:
        """The same message for a command-line user, who typed ``option`` (``--retry-time-scale``)."""
        return f"{option} {_shown(self.value, _typed)}: {self.problem}"


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong Python type (a string where a list of items belongs, a set in the items)."""


class InvalidItemsFile(InvalidArgument):
    """An --items file that cannot be read, or is neither one JSON array nor JSON Lines."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__("items_file", path, problem)


def _shown(value: Any, render: Callable[[Any], str], limit: int = 80) -> str:
    """``value`` for a one-line message: a path whole, anything else cut to ``limit`` characters (a 1 MB
    object stays one line)."""
    text = render(value)
    if isinstance(value, PurePath) or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def _written(value: Any) -> str:
    """A value as a Python caller wrote it (a path as its string)."""
    return repr(str(value) if isinstance(value, PurePath) else value)


def _typed(value: Any) -> str:
    """A value as a shell user typed it, quoted where the shell needs it (bytes that are not UTF-8, which
    Python reads as lone surrogates, shown as escapes)."""
    return shlex.quote(str(value).encode("utf-8", "backslashreplace").decode("utf-8"))


# ------------------------------------------------------------------------------------------ JSON values


def json_bytes(value: Any, argument: str, *, root: str | None = None) -> bytes:
    """``value`` as compact JSON in UTF-8, the way it travels; InvalidArgumentType names the first part that
    is not JSON (a set, NaN or infinity, a lone surrogate such as ``"\\udcff"``, a circular reference),
    as a path below ``root`` (default: the argument's name), e.g. ``items[2]["name"]``."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        where, what = _first_non_json(value)
        raise InvalidArgumentType(argument, value, f"{root or argument}{where} {what}") from None


def _lone_surrogate(character: str) -> str:
    code = ord(character)
    text = f"holds the lone surrogate {character!r}, which is not valid Unicode"
    if 0xDC80 <= code <= 0xDCFF:  # how Python reads a byte of text that is not UTF-8 (surrogateescape)
        text += f" (Python reads the byte 0x{code - 0xDC00:x} of text that is not UTF-8 so)"
    return text


def _first_non_json(value: Any) -> tuple[str, str]:
    """Where in ``value`` (``[2]["name"]``) the first part that is not JSON sits, and what it is."""
    pending: list[tuple[str, Any]] = [("", value)]
    open_containers: set[int] = set()
    while pending:
        where, part = pending.pop()
        if part is None or isinstance(part, bool | int):
            continue
        if isinstance(part, float):
            if not math.isfinite(part):
                return where, f"is {part!r}, not a JSON number (JSON numbers are finite)"
            continue
        if isinstance(part, str):
            try:
                part.encode("utf-8")
            except UnicodeEncodeError as exc:
                return where, _lone_surrogate(part[exc.start])
            continue
        if not isinstance(part, dict | list | tuple):
            return where, f"is a {type(part).__name__}, not a JSON value"
        if id(part) in open_containers:
            return where, "refers back to itself (a circular reference), not a JSON value"
        open_containers.add(id(part))
        if isinstance(part, dict):
            for key, child in reversed(part.items()):
                if not isinstance(key, str | int | float | bool) and key is not None:
                    return where, f"has the key {key!r}, not a JSON key (keys are strings)"
                label = key if isinstance(key, str) else str(key)
                pending.append((f"{where}[{json.dumps(label)}]", child))
                try:
                    label.encode("utf-8")
                except UnicodeEncodeError:
                    return where, f"has the key {label!r}, which holds a lone surrogate (not valid Unicode)"
        else:
            pending.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(part))))
    return "", "is nested too deeply for JSON"  # json.dumps refused it, yet every part is JSON


def read_items_file(path: Path | str) -> list[Any]:
    """The items of a file holding one JSON array, or JSON Lines (one JSON value a line).

    The format is told by the content, so the extension does not matter, except that ``.jsonl`` /
    ``.ndjson`` are always JSON Lines (a JSON Lines file whose first item is an array stays one) and a
    ``.json`` file must hold one array. Blank lines of JSON Lines are skipped. A file with nothing in it
    (or only blank lines), whatever its extension, is zero items, like ``[]`` and ``--size 0``: the job
    runs and combines no results, as it does on AWS.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentType(
            "items_file", path, f"must be a path (str or pathlib.Path), got {type(path).__name__}"
        )
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidItemsFile(path, f"cannot be read ({reason})") from exc
    if not text.strip():
        return []
    suffix = path.suffix.lower()
    if suffix not in JSON_LINES_SUFFIXES:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if suffix == ".json" or text.lstrip().startswith("["):
                raise InvalidItemsFile(
                    path,
                    f"not a JSON array ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                    "write one JSON array, or one JSON value a line in a .jsonl file",
                ) from exc
        else:
            if isinstance(document, list):
                return _checked_items(document, path)
            if suffix == ".json":
                raise InvalidItemsFile(
                    path,
                    f"holds a JSON {_json_type(document)}, not an array of items: "
                    "write [item, item, ...] (or one JSON value a line in a .jsonl file)",
                )
    return _checked_items(_json_lines(path, text), path)


def _json_lines(path: Path, text: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidItemsFile(
                path, f"line {number} is not JSON ({exc.msg}); write a JSON array or one JSON value a line"
            ) from exc
    return items


def _checked_items(items: list[Any], path: Path) -> list[Any]:
    """Parsed JSON can still hold what cannot travel: a lone surrogate written as ``"\\udcff"``."""
    try:
        json_bytes(items, "items_file", root="items")
    except InvalidArgument as exc:
        raise InvalidItemsFile(path, exc.problem) from None
    return items


def parse_parameters(parameters: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """Job parameters given as a dict or as JSON text: one JSON object of at most PARAMETERS_MAX_BYTES.

    Errors are InvalidArgument for ``parameters`` (the command line words them for ``--parameters``).
    """
    if parameters is None:
        return None
    given = parameters
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                "parameters", given, f"not JSON ({exc.msg}): pass an object like '{{\"scale\": 2}}'"
            ) from exc
    if not isinstance(parameters, dict):
        error = InvalidArgument if isinstance(given, str) else InvalidArgumentType
        raise error(
            "parameters",
            given,
            "must be a JSON object, like '{\"scale\": 2}', got "
            + (f"a JSON {_json_type(parameters)}" if isinstance(given, str) else type(given).__name__),
        )
    try:
        json_bytes(parameters, "parameters")
    except InvalidArgumentType as exc:
        raise InvalidArgumentType("parameters", given, exc.problem) from None  # shown as typed
    size = json_size(parameters)
    if size > PARAMETERS_MAX_BYTES:
        raise InvalidArgument(
            "parameters",
            given,
            f"takes {size} bytes of JSON, more than {PARAMETERS_MAX_BYTES} (they travel in every child's "
            "input): put large data in S3 and pass its URI in the parameters",
        )
    return parameters


def _checked_source(name: str, value: Any) -> Any:
    """One item source's value, of the type the contract takes; values themselves are the start Lambda's
    to judge (``size=-5`` fails the execution with InvalidInput, locally and on AWS alike)."""
    if name == "size" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidArgumentType(
            "size", value, f"must be a whole number of items (an int), got {type(value).__name__}"
        )
    if name == "items":
        if not isinstance(value, list | tuple):
            hint = f"; one item is [{value!r}]" if isinstance(value, str | bytes | dict) else ""
            raise InvalidArgumentType(
                "items", value, f"must be a list of items (JSON values), got {type(value).__name__}{hint}"
            )
        json_bytes(value, "items")
        return list(value)
    if name == "items_s3" and not isinstance(value, str):
        raise InvalidArgumentType(
            "items_s3",
            value,
            f'must be an S3 URI string like "s3://bucket/key.jsonl", got {type(value).__name__}',
        )
    return value


def build_execution_input(
    *,
    size: int | None = None,
    items: list[Any] | None = None,
    items_file: Path | str | None = None,
    items_s3: str | None = None,
    parameters: dict[str, Any] | str | None = None,
) -> dict[str, Any]:
    """The execution input of the contract: ``{"size"}``, ``{"items"}`` or ``{"items_s3"}``, plus parameters.

    ``items_file`` is read with ``read_items_file`` into ``items``. Types are checked here (a string is
    not a list of items); values are passed as given (``size=-5`` included): the start Lambda validates
    them.
    """
    sources = {"size": size, "items": items, "items_file": items_file, "items_s3": items_s3}
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise JobInputError(
            f"give exactly one of size, items or items_s3 (got {', '.join(given) or 'none'}); "
            "items_file is read into items. E.g. burstmap run --size 1024"
        )
    checked = parse_parameters(parameters)
    execution_input: dict[str, Any]
    if items_file is not None:
        execution_input = {"items": read_items_file(items_file)}
    else:
        execution_input = {given[0]: _checked_source(given[0], sources[given[0]])}
    if checked is not None:
        execution_input["parameters"] = checked
    return execution_input


@dataclass(frozen=True)
class JobInput:
    """What a job is started with: its execution input, and which item source it was described by.

    ``source`` is ``"size"``, ``"items"``, ``"items_file"`` or ``"items_s3"``; None for a job over S3
    objects (BurstCompute ``input_prefix``), whose input is its parameters alone: the app lists its items.
    """

    execution_input: dict[str, Any]
    source: str | None

    @classmethod
    def of(
        cls,
        *,
        size: int | None = None,
        items: list[Any] | None = None,
        items_file: Path | str | None = None,
        items_s3: str | None = None,
        parameters: dict[str, Any] | str | None = None,
    ) -> JobInput:
        """The input of a job over these items (see ``build_execution_input``); none: a job over objects."""
        sources = {"size": size, "items": items, "items_file": items_file, "items_s3": items_s3}
        given = [name for name, value in sources.items() if value is not None]
        if not given:
            checked = parse_parameters(parameters)
            return cls({} if checked is None else {"parameters": checked}, None)
        execution_input = build_execution_input(
            size=size, items=items, items_file=items_file, items_s3=items_s3, parameters=parameters
        )
        return cls(execution_input, given[0])

    @property
    def over_objects(self) -> bool:
        return self.source is None


def needs_staging(execution_input: dict[str, Any]) -> bool:
    """Whether the input carries an ``items`` list too large to pass inline (see MAX_INLINE_INPUT_BYTES)."""
    return "items" in execution_input and (
        len(json.dumps(execution_input, separators=(",", ":")).encode()) > MAX_INLINE_INPUT_BYTES
    )


def items_as_json_lines(items: list[Any]) -> bytes:
    """The body of a staged ``items_s3`` object: one compact JSON value a line."""
    return "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode()


def stage_items(
    execution_input: dict[str, Any], bucket: str, put_object: Callable[..., Any]
) -> dict[str, Any]:
    """Upload the input's ``items`` to ``bucket`` as JSON Lines and pass ``items_s3`` instead.

    ``put_object`` is an S3 client's (``put_object(Bucket=, Key=, Body=)``); the key is
    ``items/<uuid>.jsonl``, under the prefix BurstCompute's start function may read.
    """
    key = f"{STAGED_ITEMS_PREFIX}/{uuid.uuid4()}.jsonl"
    put_object(Bucket=bucket, Key=key, Body=items_as_json_lines(execution_input["items"]))
    staged = {k: v for k, v in execution_input.items() if k != "items"}
    staged["items_s3"] = f"s3://{bucket}/{key}"
    return staged


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
