"""The local S3's buckets and objects kept in the state directory, so a restart keeps inputs and results.

moto keeps its objects in the S3 child's memory (and temporary files); when the server stops, every
bucket and object is written to ``state_dir/s3`` (one file per object, named by a hash of bucket and
key, and an index with the keys, content types and metadata), and put back when it starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

INDEX_FILE = "index.json"
OBJECTS_DIR = "objects"


def save_objects(s3: Any, directory: Path) -> int:
    """Write every bucket and object of the S3 endpoint under ``directory``; returns the object count."""
    objects_dir = directory / OBJECTS_DIR
    objects_dir.mkdir(parents=True, exist_ok=True)
    buckets = [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]
    entries = []
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for summary in page.get("Contents", []):
                key = summary["Key"]
                file_name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()
                response = s3.get_object(Bucket=bucket, Key=key)
                with open(objects_dir / file_name, "wb") as handle:
                    for block in iter(lambda body=response["Body"]: body.read(1 << 20), b""):
                        handle.write(block)
                entries.append(
                    {
                        "bucket": bucket,
                        "key": key,
                        "file": file_name,
                        "content_type": response.get("ContentType"),
                        "metadata": response.get("Metadata") or {},
                    }
                )
    kept = {entry["file"] for entry in entries}
    for stale in objects_dir.iterdir():
        if stale.name not in kept:
            stale.unlink()
    temporary = directory / f"{INDEX_FILE}.tmp"
    temporary.write_text(json.dumps({"buckets": buckets, "objects": entries}))
    os.replace(temporary, directory / INDEX_FILE)
    return len(entries)


def restore_objects(s3: Any, directory: Path, ensure_bucket: Callable[[str], None]) -> int:
    """Put back what ``save_objects`` wrote (nothing when it never ran); returns the object count."""
    index_path = directory / INDEX_FILE
    if not index_path.is_file():
        return 0
    index = json.loads(index_path.read_text())
    for bucket in index.get("buckets", []):
        ensure_bucket(bucket)
    for entry in index.get("objects", []):
        extra: dict[str, Any] = {"Metadata": entry.get("metadata") or {}}
        if entry.get("content_type"):
            extra["ContentType"] = entry["content_type"]
        with open(directory / OBJECTS_DIR / entry["file"], "rb") as body:
            s3.put_object(Bucket=entry["bucket"], Key=entry["key"], Body=body, **extra)
    return len(index.get("objects", []))
