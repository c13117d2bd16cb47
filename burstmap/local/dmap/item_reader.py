"""Where a distributed Map's items come from: the state input (ItemsPath) or S3 (ItemReader).

Items are yielded lazily in chunks (lists of a few thousand items), so a JSONL or CSV object of a
million rows is never held whole in memory (a JSON array object has to be parsed whole, as AWS
reads it whole too); JSONL blocks are parsed, or checked as integer text, by item_text.py.
Behaviour follows the AWS developer guide "ItemReader (Map)" and the AWS-recorded conformance
cases in shared/conformance/cases/map_item_reader/.

Where the items come from is the context object's `Map.Item.Source` (guide, "Accessing execution
data from the Context object"): `STATE_DATA` for the state input, the bucket's URI
(`s3://bucket`) for a listObjectsV2 listing, and the object's URI (`s3://bucket/key`, no line
number) for every object read. The guide's examples write the scheme `S3://`; runs recorded
against AWS by a public conformance suite read `s3://`, which is what the engine gives.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.local.core.errors import StateRuntimeError, UnsupportedFeature, unsupported
from burstmap.local.dmap.fields import check_exclusive, check_int, field_names, invalid
from burstmap.local.dmap.item_text import (
    UnparsedIntegers,
    canonical_integers,
    item_reader_failed,
    jsonl_chunks,
)
from burstmap.local.query.jsonpath import field_or_path, read_path
from burstmap.local.query.payload_template import resolve_template

GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_OBJECTS_V2 = "arn:aws:states:::s3:listObjectsV2"
INPUT_TYPES = ("JSON", "JSONL", "CSV")
CSV_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
MAX_ITEMS_LIMIT = 100_000_000
"""AWS: "You can specify a limit of up to 100,000,000 after which the Distributed Map stops reading"."""

GET_OBJECT_PARAMETERS = ("Bucket", "Key", "VersionId", "ExpectedBucketOwner")
LIST_OBJECTS_PARAMETERS = ("Bucket", "Prefix")
_GET_OBJECT_CONFIG = (
    "InputType",
    "CSVHeaderLocation",
    "CSVHeaders",
    "CSVDelimiter",
    "MaxItems",
    "MaxItemsPath",
)
STATE_DATA = "STATE_DATA"
"""`Map.Item.Source` of items taken from the state input (ItemsPath, or Items in JSONata)."""
S3_ERRORS = (ClientError, BotoCoreError)
CHUNK_ITEMS = 4096
"""Items per chunk for the sources that are not block-parsed (JSON arrays, CSV rows, listings)."""


def validate_item_reader(reader: dict[str, Any], state_name: str) -> None:
    for key in reader:
        if key not in ("Resource", "Parameters", "ReaderConfig"):
            raise unsupported(f"ItemReader.{key}", state_name)
    resource = reader.get("Resource")
    if resource == GET_OBJECT:
        allowed, config_fields = GET_OBJECT_PARAMETERS, _GET_OBJECT_CONFIG
    elif resource == LIST_OBJECTS_V2:
        allowed, config_fields = LIST_OBJECTS_PARAMETERS, ("MaxItems", "MaxItemsPath")
    else:
        raise unsupported(f"ItemReader.Resource {resource}", state_name)
    parameters = reader.get("Parameters", {})
    for name in field_names(parameters):
        if name not in allowed:
            raise unsupported(f"ItemReader.Parameters.{name}", state_name)
    if "Bucket" not in field_names(parameters):
        raise invalid("ItemReader.Parameters must name the Bucket", state_name)
    config = reader.get("ReaderConfig", {})
    for key in config:
        if key not in config_fields:
            raise unsupported(f"ItemReader.ReaderConfig.{key}", state_name)
    check_exclusive(config, "MaxItems", "ItemReader.ReaderConfig.", state_name)
    if "MaxItems" in config:
        check_int(config["MaxItems"], "ItemReader.ReaderConfig.MaxItems", state_name, 0, MAX_ITEMS_LIMIT)
    if resource == LIST_OBJECTS_V2:
        return
    if "Key" not in field_names(parameters):
        raise invalid("ItemReader.Parameters must name the Key of the object to read", state_name)
    if isinstance(parameters.get("Key"), str):
        _refuse_zstd(parameters["Key"], state_name)
    input_type = config.get("InputType")
    if input_type is None:
        raise invalid("ItemReader.ReaderConfig.InputType is required with s3:getObject", state_name)
    if input_type not in INPUT_TYPES:
        raise unsupported(f"ItemReader.ReaderConfig.InputType {input_type}", state_name)
    if input_type != "CSV":
        for key in ("CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"):
            if key in config:
                raise invalid(f"ItemReader.ReaderConfig.{key} applies to CSV only", state_name)
        return
    _validate_csv_config(config, state_name)


def _validate_csv_config(config: dict[str, Any], state_name: str) -> None:
    location = config.get("CSVHeaderLocation")
    if location not in ("FIRST_ROW", "GIVEN"):
        raise invalid("ItemReader.ReaderConfig.CSVHeaderLocation must be FIRST_ROW or GIVEN", state_name)
    headers = config.get("CSVHeaders")
    if location == "GIVEN" and (
        not isinstance(headers, list) or not all(isinstance(h, str) for h in headers)
    ):
        raise invalid("CSVHeaderLocation GIVEN needs CSVHeaders, a list of strings", state_name)
    if location == "FIRST_ROW" and headers is not None:
        raise invalid("CSVHeaders is only allowed with CSVHeaderLocation GIVEN", state_name)
    if config.get("CSVDelimiter", "COMMA") not in CSV_DELIMITERS:
        raise invalid(f"CSVDelimiter must be one of {', '.join(CSV_DELIMITERS)}", state_name)


@dataclass(frozen=True)
class Items:
    """A Map's items, read lazily in chunks, and where they come from."""

    source: str
    """The context object's `Map.Item.Source`: STATE_DATA, `s3://bucket` or `s3://bucket/key`."""
    chunks: Iterator[list[Any] | UnparsedIntegers]
    """The items in order, as non-empty lists."""


def read_items(
    state_name: str,
    state: dict[str, Any],
    effective_input: Any,
    context: dict[str, Any],
    s3: Any,
    *,
    unparsed_integers: bool = False,
) -> Items:
    """The Map's items in order and their source. With an ItemReader, ItemsPath is ignored (as
    AWS did when recorded). A source error is raised after the chunk of items read before it.

    With `unparsed_integers`, a JSONL block whose every line is a canonical JSON integer comes as
    `UnparsedIntegers` (checked, not parsed), for a caller that only needs the items' text."""
    reader = state.get("ItemReader")
    if reader is None:
        items = _items_from_input(state_name, state, effective_input, context)
        return Items(STATE_DATA, iter([items] if items else []))
    return _items_from_s3(state_name, reader, effective_input, context, s3, unparsed_integers)


def refuse_object_items(items: Any, state_name: str) -> None:
    """Guide, "ItemReader (Map)" (updated 2025): a Distributed Map's input "can be a JSON array, a
    JSON object, ...; Step Functions will iterate directly over the elements of an array, or the
    key-value pairs of a JSON object". The shape each pair takes is not documented, and the runs
    recorded on AWS before the change failed, so the engine refuses an object instead of guessing."""
    if isinstance(items, dict):
        raise UnsupportedFeature(
            f"not supported locally: a distributed Map over the key-value pairs of a JSON object "
            f"(state '{state_name}'); give the Map an array to run it locally"
        )


def _items_from_input(
    state_name: str, state: dict[str, Any], effective_input: Any, context: dict[str, Any]
) -> list[Any]:
    items_path = state.get("ItemsPath", "$")
    items = read_path(items_path, effective_input, context)
    refuse_object_items(items, state_name)
    if not isinstance(items, list):
        raise StateRuntimeError(
            f"Map state input must be an array, but the ItemsPath {items_path} selected: "
            f"{json.dumps(items)[:200]}"
        )
    return items


def max_items(reader_config: dict[str, Any], data: Any, context: dict[str, Any]) -> int | None:
    """ReaderConfig.MaxItems / MaxItemsPath: None for no limit (absent or 0)."""
    value = field_or_path(reader_config, "MaxItems", data, context)
    if value is None:
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
) -> Items:
    if s3 is None:
        raise item_reader_failed(
            f"state '{state_name}' reads its items from S3 but the engine has no S3 client; "
            "start the local S3 endpoint or pass --endpoint-url"
        )
    config = reader.get("ReaderConfig", {})
    limit = max_items(config, data, context)
    parameters = resolve_template(reader.get("Parameters", {}), data, context)
    resource = reader["Resource"]
    if resource == LIST_OBJECTS_V2:
        source = f"s3://{parameters['Bucket']}"
        chunks = _chunked(_list_objects(s3, parameters))
    else:
        source = f"s3://{parameters['Bucket']}/{parameters['Key']}"
        _refuse_zstd(str(parameters["Key"]), state_name)
        chunks = _read_object(s3, parameters, config, unparsed_integers)
    return Items(source, chunks if limit is None else _limited(chunks, limit))


ZSTD_SUFFIXES = (".zst", ".zstd")


def _refuse_zstd(key: str, state_name: str) -> None:
    """The guide: "Input files support the following external compression types: GZIP, ZSTD"
    (e.g. `myObject.csv.zstd`). GZIP (`.gz`) is read here; ZSTD needs a decoder this engine does
    not ship, so such an object is refused rather than parsed as plain text."""
    if key.endswith(ZSTD_SUFFIXES):
        raise UnsupportedFeature(
            f"not supported locally: ZSTD-compressed ItemReader object {key!r} in state '{state_name}' "
            "(store it uncompressed or GZIP-compressed as .gz to run it locally)"
        )


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
        return jsonl_chunks(text, where, unparsed_integers=unparsed_integers)
    return _chunked(_csv_items(text, config))


def _json_items(stream: Any, *, unparsed_integers: bool = False) -> Iterator[list[Any] | UnparsedIntegers]:
    """The array's items in chunks; with `unparsed_integers`, an array of canonical integers
    separated by "," or ", " (as the start Lambda or json.dumps writes them) is checked, not parsed."""
    if unparsed_integers:
        data = stream.read()
        document_text = data.strip(b" \t\r\n")
        values = document_text[1:-1].replace(b", ", b",")  # json.dumps's default separator
        if document_text[:1] == b"[" and document_text[-1:] == b"]" and canonical_integers(values, b","):
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
