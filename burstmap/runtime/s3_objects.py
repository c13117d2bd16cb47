"""The process's S3 client and a streamed upload: what the start and combine Lambdas share for S3.

boto3 is imported on first use, so importing this module stays cheap (the Lambda runtime has boto3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PART_BYTES = 8 * 1024 * 1024
"""Multipart upload part size (S3: at least 5 MiB except the last part); the most an upload buffers."""

_S3_CLIENT: Any = None


def default_s3_client() -> Any:
    """One boto3 S3 client per process (thread-safe; honours AWS_ENDPOINT_URL_S3 for a local endpoint)."""
    global _S3_CLIENT
    if _S3_CLIENT is None:
        import boto3

        _S3_CLIENT = boto3.client("s3")
    return _S3_CLIENT


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
