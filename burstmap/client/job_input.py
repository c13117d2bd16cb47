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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_INLINE_INPUT_BYTES = 200 * 1024
"""An execution input with an ``items`` list larger than this goes through S3 (``items_s3``): AWS caps
the input at 256 KiB, and the start state adds its own fields."""

STAGED_ITEMS_PREFIX = "items"
"""Where a large ``items`` list is uploaded as JSON Lines (``<prefix>/<uuid>.jsonl``): BurstCompute's
default ``items_prefix``, which the start function is granted to read."""

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class JobInputError(ValueError):
    """The job was described inconsistently (before anything runs); the message says how to fix it."""


class InvalidItemsFile(JobInputError):
    """An --items file that cannot be read, or is neither one JSON array nor JSON Lines."""


def read_items_file(path: Path | str) -> list[Any]:
    """The items of a file holding one JSON array, or JSON Lines (one JSON value a line).

    The format is told by the content, so the extension does not matter, except that ``.jsonl`` /
    ``.ndjson`` are always JSON Lines (a JSON Lines file whose first item is an array stays one) and a
    ``.json`` file must hold one array. Blank lines of JSON Lines are skipped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidItemsFile(f"cannot read items file {path}: {reason}") from exc
    suffix = path.suffix.lower()
    if suffix not in JSON_LINES_SUFFIXES:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if suffix == ".json" or text.lstrip().startswith("["):
                raise InvalidItemsFile(
                    f"{path} is not a JSON array ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                    "write one JSON array, or one JSON value a line in a .jsonl file"
                ) from exc
        else:
            if isinstance(document, list):
                return document
            if suffix == ".json":
                raise InvalidItemsFile(
                    f"{path} holds a JSON {_json_type(document)}, not an array of items: "
                    "write [item, item, ...] (or one JSON value a line in a .jsonl file)"
                )
    return _json_lines(path, text)


def _json_lines(path: Path, text: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidItemsFile(
                f"line {number} of {path} is not JSON ({exc.msg}); "
                "write a JSON array or one JSON value a line"
            ) from exc
    return items


def parse_parameters(
    parameters: dict[str, Any] | str | None, *, option: str | None = None
) -> dict[str, Any] | None:
    """Job parameters given as a dict or as JSON text; they must be one JSON object.

    ``option`` is the command-line flag they came from (``--parameters``), named in the messages.
    """
    if parameters is None:
        return None
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except json.JSONDecodeError as exc:
            subject = f"{option} is" if option else "parameters are"
            raise JobInputError(
                f"{subject} not JSON ({exc.msg}): pass an object like '{{\"scale\": 2}}'"
            ) from exc
    if not isinstance(parameters, dict):
        raise JobInputError(
            f"{option or 'parameters'} must be a JSON object, like '{{\"scale\": 2}}', "
            f"got {_json_type(parameters)}"
        )
    return parameters


def build_execution_input(
    *,
    size: int | None = None,
    items: list[Any] | None = None,
    items_file: Path | str | None = None,
    items_s3: str | None = None,
    parameters: dict[str, Any] | str | None = None,
) -> dict[str, Any]:
    """The execution input of the contract: ``{"size"}``, ``{"items"}`` or ``{"items_s3"}``, plus parameters.

    ``items_file`` is read with ``read_items_file`` into ``items``. Values are passed as given
    (``size=-5`` included): the start Lambda validates them.
    """
    sources = {"size": size, "items": items, "items_file": items_file, "items_s3": items_s3}
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise JobInputError(
            f"give exactly one of size, items or items_s3 (got {', '.join(given) or 'none'}); "
            "items_file is read into items. E.g. burstmap run --size 1024"
        )
    execution_input: dict[str, Any]
    if items_file is not None:
        execution_input = {"items": read_items_file(items_file)}
    elif items is not None:
        execution_input = {"items": list(items)}
    else:
        execution_input = {given[0]: sources[given[0]]}
    checked = parse_parameters(parameters)
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
