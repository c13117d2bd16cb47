"""Where a distributed Map's items come from: the state input (ItemsPath) or S3 (ItemReader).

Items are yielded lazily in chunks (lists of a few thousand items), so a JSONL or CSV object of a
million rows is never held whole in memory (a JSON array object has to be parsed whole, as AWS
reads it whole too), and the per-item cost stays in C: a JSONL block is split into lines and
parsed by the json module's scanner in one `map` call, with a line-by-line fallback (exact
messages and line numbers) for any block that is not one plain JSON value per line. When the map
only needs the items' text (see `iter_item_chunks`), a block of canonical integer lines is checked
and not parsed at all.
Behaviour follows the AWS developer guide "ItemReader (Map)" and the AWS-recorded conformance
cases in shared/conformance/cases/map_item_reader/.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from itertools import chain, islice, repeat
from operator import itemgetter
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.local.map_common import (
    BoundedChunk,
    UnparsedIntegers,
    integer_from_path,
    read_path,
    resolve_template,
    runtime_error,
    states_error,
)

GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_OBJECTS_V2 = "arn:aws:states:::s3:listObjectsV2"
INPUT_TYPES = ("JSON", "JSONL", "CSV")
CSV_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
MAX_ITEMS_LIMIT = 100_000_000
"""AWS: "You can specify a limit of up to 100,000,000 after which the Distributed Map stops reading"."""

GET_OBJECT_PARAMETERS = ("Bucket", "Key", "VersionId", "ExpectedBucketOwner")
LIST_OBJECTS_PARAMETERS = ("Bucket", "Prefix")
S3_ERRORS = (ClientError, BotoCoreError)
CHUNK_ITEMS = 4096
"""Items per chunk for the sources that are not block-parsed (JSON arrays, CSV rows, listings)."""
JSONL_BLOCK_CHARS = 64 * 1024
"""Characters of JSONL text parsed at once (cut at a line end)."""

_SCAN_JSON = json.JSONDecoder().scan_once
"""The json module's (C) scanner, what `json.loads` calls after skipping leading whitespace."""
_JSON_LINE_END_SPACE = " \t\r"
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def item_reader_failed(cause: str) -> Exception:
    return states_error("States.ItemReaderFailed", cause)


def iter_items(
    state_name: str, state: dict[str, Any], effective_input: Any, context: dict[str, Any], s3: Any
) -> Iterator[Any]:
    """The Map's items in order, one at a time (see `iter_item_chunks`)."""
    return chain.from_iterable(iter_item_chunks(state_name, state, effective_input, context, s3))


def iter_item_chunks(
    state_name: str,
    state: dict[str, Any],
    effective_input: Any,
    context: dict[str, Any],
    s3: Any,
    *,
    unparsed_integers: bool = False,
) -> Iterator[list[Any] | UnparsedIntegers]:
    """The Map's items in order, as non-empty lists. With an ItemReader, ItemsPath is ignored (as
    AWS did when recorded). A source error is raised after the chunk of items read before it.

    With `unparsed_integers`, a JSONL block whose every line is a canonical JSON integer comes as
    `UnparsedIntegers` (checked, not parsed), for a caller that only needs the items' text."""
    reader = state.get("ItemReader")
    if reader is None:
        items = _items_from_input(state_name, state, effective_input, context)
        return iter([items] if items else [])
    return _items_from_s3(state_name, reader, effective_input, context, s3, unparsed_integers)


def _items_from_input(
    state_name: str, state: dict[str, Any], effective_input: Any, context: dict[str, Any]
) -> list[Any]:
    items_path = state.get("ItemsPath", "$")
    items = read_path(items_path, effective_input, context)
    if not isinstance(items, list):
        raise runtime_error(
            state_name,
            f"Map state input must be an array, but the ItemsPath {items_path} selected: "
            f"{json.dumps(items)[:200]}",
            context,
        )
    return items


def max_items(
    reader_config: dict[str, Any], data: Any, context: dict[str, Any], state_name: str
) -> int | None:
    """ReaderConfig.MaxItems / MaxItemsPath: None for no limit (absent or 0)."""
    if "MaxItemsPath" in reader_config:
        path = reader_config["MaxItemsPath"]
        value = integer_from_path("MaxItemsPath", path, read_path(path, data, context), state_name, context)
    elif "MaxItems" in reader_config:
        value = reader_config["MaxItems"]
    else:
        return None
    if value < 0:
        raise item_reader_failed("field MaxItems must be positive")
    if value == 0:
        return None
    return min(value, MAX_ITEMS_LIMIT)


def _items_from_s3(
    state_name: str,
    reader: dict[str, Any],
    data: Any,
    context: dict[str, Any],
    s3: Any,
    unparsed_integers: bool = False,
) -> Iterator[list[Any] | UnparsedIntegers]:
    if s3 is None:
        raise item_reader_failed(
            f"state '{state_name}' reads its items from S3 but the engine has no S3 client; "
            "start the local S3 endpoint or pass --endpoint-url"
        )
    config = reader.get("ReaderConfig", {})
    limit = max_items(config, data, context, state_name)
    parameters = resolve_template(reader.get("Parameters", {}), data, context)
    resource = reader["Resource"]
    if resource == LIST_OBJECTS_V2:
        chunks = _chunked(_list_objects(s3, parameters))
    else:
        chunks = _read_object(s3, parameters, config, unparsed_integers)
    return chunks if limit is None else _limited(chunks, limit)


def _chunked(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK_ITEMS)):
        yield chunk


def _limited(chunks: Iterator[Any], limit: int) -> Iterator[Any]:
    """The first `limit` items (ReaderConfig.MaxItems); the source is not read further."""
    for chunk in chunks:
        if len(chunk) >= limit:
            if isinstance(chunk, UnparsedIntegers):
                chunk = chunk.parsed()
            yield chunk[:limit]
            return
        limit -= len(chunk)
        yield chunk


def _client_error(exc: Exception, what: str) -> Exception:
    return item_reader_failed(f"{what}: {exc}")


def _list_objects(s3: Any, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One item per object, shaped as AWS documents: Etag, Key, LastModified (epoch s), Size, StorageClass."""
    request = {"Bucket": parameters["Bucket"]}
    if parameters.get("Prefix"):
        request["Prefix"] = parameters["Prefix"]
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**request):
            for obj in page.get("Contents", []):
                yield {
                    "Etag": obj["ETag"],
                    "Key": obj["Key"],
                    "LastModified": int(obj["LastModified"].timestamp()),
                    "Size": obj["Size"],
                    "StorageClass": obj.get("StorageClass", "STANDARD"),
                }
    except S3_ERRORS as exc:
        raise _client_error(exc, f"listing s3://{request['Bucket']}/{request.get('Prefix', '')}") from exc


def _read_object(
    s3: Any, parameters: dict[str, Any], config: dict[str, Any], unparsed_integers: bool = False
) -> Iterator[list[Any] | UnparsedIntegers]:
    request = {k: parameters[k] for k in GET_OBJECT_PARAMETERS if k in parameters}
    where = f"s3://{request.get('Bucket')}/{request.get('Key')}"
    try:
        body = s3.get_object(**request)["Body"]
    except S3_ERRORS as exc:
        raise _client_error(exc, f"reading {where}") from exc
    stream: Any = body
    if str(request.get("Key", "")).endswith(".gz"):
        stream = gzip.GzipFile(fileobj=body)
    input_type = config.get("InputType")
    if input_type == "JSON":
        return _json_items(stream, unparsed_integers=unparsed_integers)
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    if input_type == "JSONL":
        return _jsonl_chunks(text, where, unparsed_integers=unparsed_integers)
    return _chunked(_csv_items(text, config))


def _json_items(stream: Any, *, unparsed_integers: bool = False) -> Iterator[list[Any] | UnparsedIntegers]:
    """The array's items in chunks; with `unparsed_integers`, an array of canonical integers
    separated by "," or ", " (as the start Lambda or json.dumps writes them) is checked, not parsed."""
    if unparsed_integers:
        data = stream.read()
        document_text = data.strip(b" \t\r\n")
        values = document_text[1:-1].replace(b", ", b",")  # json.dumps's default separator
        if document_text[:1] == b"[" and document_text[-1:] == b"]" and _canonical_integers(values, b","):
            text = values.decode("ascii")
            yield UnparsedIntegers(text, text.count(",") + 1)
            return
        stream = io.BytesIO(data)
    try:
        document = json.load(stream)
    except (ValueError, UnicodeDecodeError) as exc:
        raise item_reader_failed(f"The JSON file is not valid JSON: {exc}") from exc
    if not isinstance(document, list):
        raise item_reader_failed("Attempting to map over non-iterable node.")
    # Drop the parsed array's references as chunks are handed out (from its end: no shifting).
    document.reverse()
    while document:
        chunk = document[-CHUNK_ITEMS:]
        del document[-CHUNK_ITEMS:]
        chunk.reverse()
        yield chunk


def _jsonl_chunks(
    text: io.TextIOBase, where: str, *, unparsed_integers: bool = False
) -> Iterator[list[Any] | UnparsedIntegers]:
    """JSONL blocks cut at line ends, each parsed at once; line numbers count lines as iterating
    the text does (universal newlines: \\n, \\r\\n and a lone \\r end a line). With
    `unparsed_integers`, a block of canonical integer lines is checked only (`UnparsedIntegers`)."""
    lines_before = 0
    carry: list[str] = []
    while True:
        block = text.read(JSONL_BLOCK_CHARS)
        if not block:
            break
        cut = block.rfind("\n") + 1
        if cut == 0:
            carry.append(block)
            continue
        whole = "".join(carry) + block[:cut] if carry else block[:cut]
        carry = [block[cut:]] if cut < len(block) else []
        items, error = _parse_jsonl_block(whole, lines_before, where, unparsed_integers)
        if items:
            yield items
        if error is not None:
            raise error
        lines_before += _line_count(whole)
    rest = "".join(carry)
    if rest:
        items, error = _parse_jsonl_block(rest, lines_before, where, unparsed_integers)
        if items:
            yield items
        if error is not None:
            raise error


def _line_count(block: str) -> int:
    """Lines in a block that ends with a line break, counted with universal newlines."""
    if "\r" not in block:
        return block.count("\n")
    return block.count("\n") + block.count("\r") - block.count("\r\n")


def _parse_jsonl_block(
    block: str, lines_before: int, where: str, unparsed_integers: bool = False
) -> tuple[list[Any] | UnparsedIntegers, Exception | None]:
    """The items of a block of whole lines, and the error that stops it (after the items before it).

    Fast path: every line is one JSON value with no surrounding blank (a `\\r\\n` ending aside), so
    `scan_once(line, 0)` - what `json.loads` does - returns it and stops at the line's end. Anything
    else (blank lines, leading spaces, a lone \\r, a bad line) goes line by line as before.
    """
    text = block
    carriage_returns = block.count("\r")
    if carriage_returns:
        if carriage_returns != block.count("\r\n"):
            return _parse_jsonl_lines(block, lines_before, where)
        text = block.replace("\r\n", "\n")  # \r is JSON whitespace: no value changes
    if unparsed_integers:
        body = text[:-1] if text.endswith("\n") else text
        if _canonical_integer_lines(body):
            return UnparsedIntegers(body.replace("\n", ","), body.count("\n") + 1), None
    if "[" not in text and "{" not in text:
        # Scalars only: one parse of the lines joined by ",\n". A string cannot hold a raw line
        # break, so each value lies within a line; with no empty line and as many values as lines,
        # each line holds exactly one. With no string at all, "," alone keeps them apart.
        body = text[:-1] if text.endswith("\n") else text
        joined = body.replace("\n", ",\n" if '"' in body else ",")
        try:
            values = json.loads("[" + joined + "]")
        except ValueError:
            values = None
        if values is not None and len(values) == body.count("\n") + 1:
            if "." in body or "e" in body or "E" in body or '"' in body:
                return values, None
            # Integers and null only (ASCII): each value's JSON text is at most its line's.
            chunk = BoundedChunk(values)
            chunk.json_bytes_bound = len(body)
            if " " not in body and "\t" not in body and "-0" not in body:
                # No blank around a value and no -0: each line is its value's compact JSON.
                chunk.json_text = joined
            return chunk, None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        # A line the scanner cannot start raises StopIteration, which ends the map early.
        scanned = list(map(_SCAN_JSON, lines, repeat(0)))
    except ValueError:
        scanned = []
    if len(scanned) == len(lines) and list(map(_SECOND, scanned)) == list(map(len, lines)):
        return list(map(_FIRST, scanned)), None
    return _parse_jsonl_lines(block, lines_before, where)


def _canonical_integer_lines(body: str) -> bool:
    """Whether every line of `body` (no final line break) is an integer as compact JSON writes it."""
    return body.isascii() and _canonical_integers(body.encode("ascii"), b"\n")


def _canonical_integers(data: bytes, separator: bytes) -> bool:
    """Whether `data` is integers as compact JSON writes them, one between each `separator`: an
    optional minus, then digits with no leading zero (no -0), nothing else, none empty. Checked
    with C-speed byte operations, about a third of the cost of parsing; a False may be wrong
    (several "0" in a row), as it only costs a parse.

    An integer past Python's digit limit (4,300 digits) passes, and reaches the function, whose
    runtime cannot parse it either."""
    if not data or data.translate(None, b"0123456789-" + separator):  # any other character
        return False
    if data.startswith(separator) or data.endswith(separator) or separator * 2 in data:  # an empty one
        return False
    # One starting with 0 is exactly "0" (each separator-0-separator found is one such; overlapping
    # ones are undercounted, which can only refuse).
    zero, lone_zero = separator + b"0", separator + b"0" + separator
    if data.startswith(b"0") and len(data) > 1 and data[1:2] != separator:
        return False
    if zero in data and data.count(zero) != data.count(lone_zero) + data.endswith(zero):
        return False
    # A minus only starts one, and a digit other than 0 follows it.
    return b"-" not in data or (
        data.count(b"-") == data.count(separator + b"-") + data.startswith(b"-")
        and b"-0" not in data
        and b"-" + separator not in data
        and not data.endswith(b"-")
    )


def _parse_jsonl_lines(block: str, lines_before: int, where: str) -> tuple[list[Any], Exception | None]:
    """Line by line, as the lines of the text iterate: blank lines skipped, the first bad line named."""
    items: list[Any] = []
    for line_number, line in enumerate(io.StringIO(block, newline=""), start=lines_before + 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            error = item_reader_failed(f"{where} line {line_number} is not valid JSON: {exc}")
            error.__cause__ = exc
            return items, error
    return items, None


def _csv_items(text: io.TextIOBase, config: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Rows as objects of strings; short rows padded with "", extra fields dropped (AWS's rules)."""
    delimiter = CSV_DELIMITERS[config.get("CSVDelimiter", "COMMA")]
    rows = csv.reader(
        text, delimiter=delimiter, quotechar='"', doublequote=True, escapechar="\\", strict=False
    )
    if config.get("CSVHeaderLocation") == "GIVEN":
        headers = list(config["CSVHeaders"])
    else:
        headers = next(rows, None)
        if headers is None:
            return
    if len(set(headers)) != len(headers):
        raise item_reader_failed("CSV headers cannot contain duplicates.")
    width = len(headers)
    for row in rows:
        if not row:
            continue  # a blank line separates nothing
        if len(row) < width:
            row = row + [""] * (width - len(row))
        yield dict(zip(headers, row, strict=False))
