"""Start: check the execution input and hand the Distributed Map its items, in the payload or in S3.

Output (the task keeps only the Payload; docs/architecture.md)::

    {"source": "payload", "items": [...], "count": N, "parameters": {...}}
    {"source": "s3", "items_bucket": "b", "items_key": "k", "items_format": "JSONL" | "CSV" | "JSON",
     "count": N, "parameters": {...}}

An item list of more than ``PAYLOAD_ITEMS_MAX_BYTES`` of JSON (or any list with ``"via_s3": true``) is written
to ``s3://$BURSTMAP_BUCKET/$BURSTMAP_ITEMS_PREFIX/<request id>.json`` as one JSON array, streamed: a ``size``
job is generated block by block and uploaded part by part, never held whole. ``items_s3`` lists are checked
(they exist, every line or element parses) and counted, streamed too. Bad input raises ``InvalidInput``
at once.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from burstmap.runtime.contracts import (
    PAYLOAD_ITEMS_MAX_BYTES,
    InvalidInput,
    ItemsFormat,
    JobRequest,
    S3Location,
    StartOutput,
    check_state_payload,
    json_size,
    parse_execution_input,
    range_json_size,
)
from burstmap.runtime.results import (
    InvalidResultFile,
    body_chunks,
    default_s3_client,
    iter_json_array,
    iter_json_lines,
    iter_lines,
)

PART_BYTES = 8 * 1024 * 1024
"""Multipart upload part size (S3: at least 5 MiB except the last part); the most the upload buffers."""
SIZE_BLOCK = 65_536
"""Items of a ``size`` job generated at once when writing the list."""
DEFAULT_ITEMS_PREFIX = "items"


def handler(event: Any, context: Any) -> StartOutput:
    """Lambda entry point; the request id names the item list object, so a retried start overwrites it."""
    return start(
        event,
        job_id=context.aws_request_id,
        bucket=os.environ.get("BURSTMAP_BUCKET") or None,
        items_prefix=os.environ.get("BURSTMAP_ITEMS_PREFIX") or DEFAULT_ITEMS_PREFIX,
    )


def start(
    event: Any,
    *,
    job_id: str,
    bucket: str | None,
    items_prefix: str = DEFAULT_ITEMS_PREFIX,
    s3: Any = None,
    payload_items_max_bytes: int = PAYLOAD_ITEMS_MAX_BYTES,
) -> StartOutput:
    """The start output for ``event``: items in the payload when they fit, else an S3 list."""
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
            output = _write_list(request, list_bytes, job_id, bucket, items_prefix, s3)
    check_state_payload(output, "The start output")
    return output


# ---------------------------------------------------------------------------------------------------
# lists written by start


def _write_list(
    request: JobRequest, list_bytes: int, job_id: str, bucket: str | None, items_prefix: str, s3: Any
) -> StartOutput:
    if bucket is None:
        reason = (
            "you asked for via_s3"
            if request.via_s3
            else (
                f"the item list takes {list_bytes} bytes of JSON, more than the "
                f"{PAYLOAD_ITEMS_MAX_BYTES} that fit in the 256 KiB state payload beside the job's results"
            )
        )
        raise InvalidInput(
            f"The items must go through S3 ({reason}), but this start function has no bucket (environment "
            "variable BURSTMAP_BUCKET; BurstCompute sets it): upload the list yourself and start with "
            '{"items_s3": "s3://bucket/key.jsonl"}, or send fewer items.'
        )
    key = f"{items_prefix.strip('/')}/{job_id}.json"
    if request.size is not None:
        count = request.size
        blocks = _size_blocks(request.size)
    else:
        assert request.items is not None
        count = len(request.items)
        blocks = (json.dumps(item, separators=(",", ":")).encode("utf-8") for item in request.items)
    upload_stream(s3 or default_s3_client(), bucket, key, _json_array(blocks), part_bytes=PART_BYTES)
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


def upload_stream(
    s3: Any, bucket: str, key: str, chunks: Iterable[bytes], *, part_bytes: int = PART_BYTES
) -> int:
    """Upload the concatenated chunks; at most one part (``part_bytes``) is in memory. Returns the bytes sent.

    A body that fits one part is a single PutObject; a larger one a multipart upload, aborted on failure so
    no orphaned parts are billed.
    """
    buffer = bytearray()
    chunk_iter = iter(chunks)
    for chunk in chunk_iter:
        buffer += chunk
        if len(buffer) >= part_bytes:
            break
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), ContentType="application/x-ndjson")
        return len(buffer)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-ndjson")[
        "UploadId"
    ]
    parts: list[dict[str, Any]] = []
    sent = 0
    try:
        for chunk in chunk_iter:
            buffer += chunk
            while len(buffer) >= part_bytes:
                with memoryview(buffer) as view:
                    part = bytes(view[:part_bytes])  # the one copy boto3 sends
                sent += _upload_part(s3, bucket, key, upload_id, parts, part)
                del part, buffer[:part_bytes]
        if buffer or not parts:
            sent += _upload_part(s3, bucket, key, upload_id, parts, bytes(buffer))
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return sent


def _upload_part(
    s3: Any, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]], data: bytes
) -> int:
    number = len(parts) + 1
    response = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
    parts.append({"ETag": response["ETag"], "PartNumber": number})
    return len(data)


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


def _count_csv_rows(chunks: Iterable[bytes]) -> int:
    """Rows after the header row (the ItemReader's CSVHeaderLocation FIRST_ROW); blank lines do not count."""
    lines = (line.decode("utf-8") for line in iter_lines(chunks))
    rows = sum(1 for row in csv.reader(lines) if row)
    return max(0, rows - 1)
