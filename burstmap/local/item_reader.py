"""Where a distributed Map's items come from: the state input (ItemsPath) or S3 (ItemReader).

Items are yielded lazily, one at a time, so a JSONL or CSV object of a million rows is never
held whole in memory (a JSON array object has to be parsed whole, as AWS reads it whole too).
Behaviour follows the AWS developer guide "ItemReader (Map)" and the AWS-recorded conformance
cases in shared/conformance/cases/map_item_reader/.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.local.map_common import (
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


def item_reader_failed(cause: str) -> Exception:
    return states_error("States.ItemReaderFailed", cause)


def iter_items(
    state_name: str, state: dict[str, Any], effective_input: Any, context: dict[str, Any], s3: Any
) -> Iterator[Any]:
    """The Map's items in order. With an ItemReader, ItemsPath is ignored (as AWS did when recorded)."""
    reader = state.get("ItemReader")
    if reader is None:
        return _items_from_input(state_name, state, effective_input, context)
    return _items_from_s3(state_name, reader, effective_input, context, s3)


def _items_from_input(
    state_name: str, state: dict[str, Any], effective_input: Any, context: dict[str, Any]
) -> Iterator[Any]:
    items_path = state.get("ItemsPath", "$")
    items = read_path(items_path, effective_input, context)
    if not isinstance(items, list):
        raise runtime_error(
            state_name,
            f"Map state input must be an array, but the ItemsPath {items_path} selected: "
            f"{json.dumps(items)[:200]}",
            context,
        )
    return iter(items)


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
    state_name: str, reader: dict[str, Any], data: Any, context: dict[str, Any], s3: Any
) -> Iterator[Any]:
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
        items = _list_objects(s3, parameters)
    else:
        items = _read_object(s3, parameters, config)
    return items if limit is None else islice(items, limit)


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


def _read_object(s3: Any, parameters: dict[str, Any], config: dict[str, Any]) -> Iterator[Any]:
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
        return _json_items(stream)
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    if input_type == "JSONL":
        return _jsonl_items(text, where)
    return _csv_items(text, config)


def _json_items(stream: Any) -> Iterator[Any]:
    try:
        document = json.load(stream)
    except (ValueError, UnicodeDecodeError) as exc:
        raise item_reader_failed(f"The JSON file is not valid JSON: {exc}") from exc
    if not isinstance(document, list):
        raise item_reader_failed("Attempting to map over non-iterable node.")
    # Drop the reference to the parsed array as items are handed out.
    document.reverse()
    while document:
        yield document.pop()


def _jsonl_items(text: io.TextIOBase, where: str) -> Iterator[Any]:
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise item_reader_failed(f"{where} line {line_number} is not valid JSON: {exc}") from exc


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
