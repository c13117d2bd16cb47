"""Start: check the execution input and hand the Distributed Map its items, in the payload or in S3.

Output (the task keeps only the Payload; docs/architecture.md)::

    {"source": "payload", "items": [...], "count": N, "parameters": {...}}
    {"source": "s3", "items_bucket": "b", "items_key": "k", "items_format": "JSONL" | "CSV" | "JSON",
     "count": N, "parameters": {...}}

An item list of more than ``PAYLOAD_ITEMS_MAX_BYTES`` of JSON (or any list with ``"via_s3": true``) is written
to ``s3://<bucket>/<items prefix>/<job id>.json`` as one JSON array, streamed: a ``size`` job is generated
block by block and uploaded part by part, never held whole. ``items_s3`` lists are checked (they exist,
every line or element parses) and counted, streamed too. Bad input raises ``InvalidInput`` at once.
The start Lambda (``lambdas/start``) is one call to :func:`start`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from burstmap.runtime.contracts import (
    DEFAULT_ITEMS_PREFIX,
    ENV_BUCKET,
    PAYLOAD_ITEMS_MAX_BYTES,
    InvalidInput,
    InvalidResultFile,
    ItemsFormat,
    JobRequest,
    S3Location,
    StartOutput,
    check_state_payload,
    json_size,
    parse_execution_input,
    range_json_size,
)
from burstmap.runtime.json_stream import body_chunks, iter_json_array, iter_json_lines, iter_lines
from burstmap.runtime.s3_objects import PART_BYTES, default_s3_client, upload_stream

SIZE_BLOCK = 65_536
"""Items of a ``size`` job generated at once when writing the list."""


def start(
    event: Any,
    *,
    job_id: str,
    bucket: str | None,
    items_prefix: str = DEFAULT_ITEMS_PREFIX,
    s3: Any = None,
    payload_items_max_bytes: int = PAYLOAD_ITEMS_MAX_BYTES,
    part_bytes: int = PART_BYTES,
) -> StartOutput:
    """The start output for ``event``: items in the payload when they fit, else an S3 list.

    ``job_id`` names the list written to S3 (the Lambda request id: a retried start overwrites it);
    ``bucket`` is where it goes (None: a list too large for the payload is an error).
    """
    request = parse_execution_input(event)
    if request.items_s3 is not None:
        assert request.items_format is not None
        output: StartOutput = _from_user_list(request, request.items_s3, request.items_format, s3)
    else:
        list_bytes = range_json_size(request.size) if request.size is not None else json_size(request.items)
        if list_bytes <= payload_items_max_bytes and not request.via_s3:
            items = list(range(request.size)) if request.size is not None else request.items
            assert items is not None
            output = {
                "source": "payload",
                "items": items,
                "count": len(items),
                "parameters": request.parameters,
            }
        else:
            if bucket is None:
                raise _no_bucket(request, list_bytes)
            key = f"{items_prefix.strip('/')}/{job_id}.json"
            output = _write_list(request, bucket, key, s3 or default_s3_client(), part_bytes)
    check_state_payload(output, "The start output")
    return output


# ---------------------------------------------------------------------------------------------------
# lists written by start


def _no_bucket(request: JobRequest, list_bytes: int) -> InvalidInput:
    reason = (
        "you asked for via_s3"
        if request.via_s3
        else (
            f"the item list takes {list_bytes} bytes of JSON, more than the "
            f"{PAYLOAD_ITEMS_MAX_BYTES} that fit in the 256 KiB state payload beside the job's results"
        )
    )
    return InvalidInput(
        f"The items must go through S3 ({reason}), but this start function has no bucket (environment "
        f"variable {ENV_BUCKET}; BurstCompute sets it): upload the list yourself and start with "
        '{"items_s3": "s3://bucket/key.jsonl"}, or send fewer items.'
    )


def _write_list(request: JobRequest, bucket: str, key: str, s3: Any, part_bytes: int) -> StartOutput:
    if request.size is not None:
        count = request.size
        blocks = _size_blocks(request.size)
    else:
        assert request.items is not None
        count = len(request.items)
        blocks = (json.dumps(item, separators=(",", ":")).encode("utf-8") for item in request.items)
    upload_stream(s3, bucket, key, _json_array(blocks), part_bytes=part_bytes)
    return {
        "source": "s3",
        "items_bucket": bucket,
        "items_key": key,
        # A JSON array, not JSON Lines: AWS documents JSON arrays of any values for ItemReader, while its
        # JSONL examples are all objects, and a size job's items are bare integers.
        "items_format": "JSON",
        "count": count,
        "parameters": request.parameters,
    }


def _size_blocks(size: int) -> Iterator[bytes]:
    """``0,1,...`` for a size job, one block of numbers at a time."""
    for low in range(0, size, SIZE_BLOCK):
        yield ",".join(map(str, range(low, min(size, low + SIZE_BLOCK)))).encode("ascii")


def _json_array(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Join comma-separated blocks of JSON values into one JSON array, streamed."""
    yield b"["
    for position, block in enumerate(blocks):
        yield block if position == 0 else b"," + block
    yield b"]"


# ---------------------------------------------------------------------------------------------------
# lists the user uploaded


def _from_user_list(
    request: JobRequest, location: S3Location, item_format: ItemsFormat, s3: Any
) -> StartOutput:
    count = count_items(s3 or default_s3_client(), location, item_format)
    return {
        "source": "s3",
        "items_bucket": location.bucket,
        "items_key": location.key,
        "items_format": item_format,
        "count": count,
        "parameters": request.parameters,
    }


def count_items(s3: Any, location: S3Location, item_format: ItemsFormat) -> int:
    """Items in a user's list, read as the ItemReader will read it; InvalidInput when it cannot be read."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise InvalidInput(
                f"items_s3 object {location.uri} does not exist: upload the list first, or fix the URI."
            ) from exc
        if code == "NoSuchBucket":
            raise InvalidInput(f"items_s3 bucket {location.bucket!r} does not exist: fix the URI.") from exc
        if code in ("AccessDenied", "403", "Forbidden"):
            if _listed_as_missing(s3, location):
                raise InvalidInput(
                    f"items_s3 object {location.uri} does not exist: upload the list first, or fix the URI."
                ) from exc
            raise InvalidInput(
                f"items_s3 object {location.uri} cannot be read by the start function (AccessDenied): "
                "put the list under the job bucket's items prefix, or add its bucket to BurstCompute's "
                "item_source_buckets."
            ) from exc
        raise
    chunks = body_chunks(body)
    try:
        if item_format == "JSONL":
            return sum(1 for _ in iter_json_lines(chunks, location.uri))
        if item_format == "JSON":
            return sum(1 for _ in iter_json_array(chunks, location.uri))
        return _count_csv_rows(chunks)
    except (InvalidResultFile, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(
            f"items_s3 object {location.uri} is not a valid {item_format} item list: {exc} "
            "Fix the file (JSONL: one JSON value a line; JSON: one array; CSV: a header row, then rows)."
        ) from exc


def _listed_as_missing(s3: Any, location: S3Location) -> bool:
    """Whether a listing with the key as its prefix shows the object is not there.

    S3 answers a GetObject for a missing key with 404 only to a caller allowed s3:ListBucket, else
    with 403 (S3 API reference, GetObject, "Permissions"). The start role's ListBucket grant is
    conditioned on ``s3:prefix`` under the items prefix: a ListObjectsV2 with ``Prefix=<key>`` sends
    that condition key for certain, so a 403 from GetObject is told apart from a missing object
    whatever S3 puts in the GetObject request's context. False when the listing is refused too.
    """
    from botocore.exceptions import ClientError

    try:
        listing = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    except ClientError:
        return False
    return not any(entry.get("Key") == location.key for entry in listing.get("Contents", []))


def _count_csv_rows(chunks: Iterable[bytes]) -> int:
    """Rows after the header row (the ItemReader's CSVHeaderLocation FIRST_ROW); blank lines do not count."""
    lines = (line.decode("utf-8") for line in iter_lines(chunks))
    rows = sum(1 for row in csv.reader(lines) if row)
    return max(0, rows - 1)
