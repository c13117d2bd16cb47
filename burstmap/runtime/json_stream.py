"""JSON read from a stream of byte chunks, one value at a time, in bounded memory.

Result files and item lists can be far larger than a Lambda's memory: a JSON array is decoded element by
element with :meth:`json.JSONDecoder.raw_decode` from a buffer of about one chunk, JSON Lines line by line.
Integers past Python's 4,300-digit conversion limit are read exactly (the example job's results are tens
of thousands of digits long). Standard library only: this module runs inside Lambda.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from burstmap.runtime.contracts import InvalidResultFile, decimal_to_int

READ_CHUNK_BYTES = 1024 * 1024
"""Bytes read from S3 at a time; a JSON-array file is decoded from a buffer of about this size."""
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""A record larger than this cannot be a child execution's record (inputs and outputs are <= 256 KiB each)."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_BIG_INT_DECODER = json.JSONDecoder(parse_int=decimal_to_int)
_NUMBER_CHARACTERS = frozenset("0123456789.eE+-")


def loads(text: str | bytes) -> Any:
    """``json.loads`` that also reads integers past Python's 4,300-digit conversion limit."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        return json.loads(text, parse_int=decimal_to_int)


def _raw_decode(buffer: str, position: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(buffer, position)
    except json.JSONDecodeError:
        raise
    except ValueError:
        return _BIG_INT_DECODER.raw_decode(buffer, position)


def iter_json_array(chunks: Iterable[bytes], where: str = "the file") -> Iterator[Any]:
    """The elements of a JSON array read from byte chunks, one at a time, in bounded memory."""
    source = iter(chunks)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buffer, position, at_end = "", 0, False
    number = 0

    def fill() -> None:
        nonlocal buffer, position, at_end
        chunk = next(source, None)
        if chunk is None:
            buffer, at_end = buffer[position:] + utf8.decode(b"", final=True), True
        else:
            buffer = buffer[position:] + utf8.decode(chunk)
        position = 0

    def skip_whitespace() -> bool:
        """Move to the next token; False at the end of the input."""
        nonlocal position
        while True:
            position = _WHITESPACE.match(buffer, position).end()  # type: ignore[union-attr]
            if position < len(buffer):
                return True
            if at_end:
                return False
            fill()

    def fail(expected: str) -> InvalidResultFile:
        found = buffer[position : position + 40] or "the end of the file"
        return InvalidResultFile(
            f"{where} is not a JSON array: expected {expected} after element {number}, found {found!r}."
        )

    if not skip_whitespace() or buffer[position] != "[":
        raise fail("'['")
    position += 1
    if not skip_whitespace():
        raise fail("a value or ']'")
    if buffer[position] == "]":
        position += 1
    else:
        while True:
            while True:
                try:
                    value, end = _raw_decode(buffer, position)
                except json.JSONDecodeError as exc:
                    if at_end:
                        raise InvalidResultFile(
                            f"{where}: element {number} is not valid JSON ({exc.msg})."
                        ) from exc
                    if len(buffer) - position > MAX_RECORD_BYTES:
                        raise InvalidResultFile(
                            f"{where}: element {number} is not JSON or over {MAX_RECORD_BYTES} bytes."
                        ) from exc
                    fill()
                    continue
                if not at_end and (end == len(buffer) or _number_may_continue(value, buffer[end])):
                    fill()  # "[12" + "3]" or "[1" + ".5]": the number continues in the next chunk
                    continue
                break
            position = end
            number += 1
            yield value
            del value
            if not skip_whitespace():
                raise fail("',' or ']'")
            if buffer[position] == "]":
                position += 1
                break
            if buffer[position] != ",":
                raise fail("',' or ']'")
            position += 1
            if not skip_whitespace():
                raise fail("a value")
    if skip_whitespace():
        raise fail("the end of the file")


def _number_may_continue(value: Any, following: str) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and following in _NUMBER_CHARACTERS


def iter_json_lines(chunks: Iterable[bytes], where: str = "the file") -> Iterator[Any]:
    """One JSON value per non-blank line, read from byte chunks; blank lines are skipped."""
    for number, line in enumerate(iter_lines(chunks), start=1):
        if not line.strip():
            continue
        try:
            yield loads(line)
        except ValueError as exc:
            raise InvalidResultFile(f"{where} line {number} is not valid JSON ({exc}).") from exc


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without the newline) from byte chunks; only one line and one chunk are held at a time."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


def body_chunks(body: Any, chunk_bytes: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    """Byte chunks of a streaming body (botocore ``StreamingBody`` or any ``read(n)`` object)."""
    try:
        while chunk := body.read(chunk_bytes):
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
