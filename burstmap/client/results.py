"""A finished job's results, read back the same way whichever backend ran it: where its ResultWriter
manifests are, which items failed, and a copy of the manifests and result files on disk.

The reading itself is :mod:`burstmap.runtime.results` (what the combine function uses); this module adds
what only a client needs. A manifest is found where Step Functions writes it: the combine output names it
(``"manifest"``); without one (a failed execution) each map run's manifest is at
``<ResultWriter Prefix>/<map run id>/manifest.json`` in the ResultWriter's bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.runtime.contracts import InvalidResult, InvalidResultFile, failed_item_index
from burstmap.runtime.results import (
    ItemResult,
    ResultReadError,
    body_chunks,
    iter_failed,
    iter_manifest_results,
    read_manifest,
)

S3Object = tuple[str, str]
"""(bucket, key)."""
UNREADABLE = (ResultReadError, InvalidResultFile, InvalidResult)
"""What reading a manifest or result file can raise: S3 refused it, or it is not in AWS's layout."""
FAILED_ITEMS_FILE = "failed_items.json"


@dataclass
class DownloadedResults:
    """What a job's ``download_results`` wrote: one manifest at the top of ``directory`` (several: one
    folder per map run), the result files beside it, and every failed item in failed_items.json."""

    directory: Path
    manifest: Path | None
    """None: the run wrote no manifest (it failed before a map run), only failed_items.json."""
    result_files: list[Path] = field(default_factory=list)
    failed_items: Path | None = None
    failed_count: int = 0
    manifests: list[Path] = field(default_factory=list)
    output_files: list[Path] = field(default_factory=list)
    """A local job over S3 objects: what its compute wrote under the output prefix, at its key's path."""

    def summary(self) -> dict[str, Any]:
        """What ``burstmap results`` prints (and ``burstmap run --output-dir`` as ``output_dir``)."""
        return {
            "directory": str(self.directory),
            "manifest": None if self.manifest is None else str(self.manifest),
            "result_files": [str(path) for path in self.result_files],
            "failed_items": None if self.failed_items is None else str(self.failed_items),
            "failed_count": self.failed_count,
        }

    def moved(self, old_root: Path, new_root: Path) -> DownloadedResults:
        """The same files after their folder ``old_root`` was renamed ``new_root``."""

        def move(path: Path) -> Path:
            return new_root / path.relative_to(old_root) if path.is_relative_to(old_root) else path

        return DownloadedResults(
            directory=move(self.directory),
            manifest=None if self.manifest is None else move(self.manifest),
            result_files=[move(path) for path in self.result_files],
            failed_items=None if self.failed_items is None else move(self.failed_items),
            failed_count=self.failed_count,
            manifests=[move(path) for path in self.manifests],
            output_files=[move(path) for path in self.output_files],
        )

    @property
    def files(self) -> list[Path]:
        """Every file written."""
        written = [*self.manifests, *self.result_files, *self.output_files]
        return written + ([self.failed_items] if self.failed_items is not None else [])


def split_s3_uri(uri: str) -> S3Object:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


# ------------------------------------------------------------------------------------------ finding


def manifest_named_by(output: Any) -> S3Object | None:
    """The manifest a combine output names (``{"manifest": "s3://..."}``), if it names one."""
    if isinstance(output, Mapping) and isinstance(output.get("manifest"), str):
        return split_s3_uri(output["manifest"])
    return None


def result_writers(definition: Mapping[str, Any]) -> list[S3Object]:
    """(bucket, prefix) of every Map state's ResultWriter with literal values, at any depth, once each."""
    return list(dict.fromkeys(_result_writers(definition)))


def _result_writers(definition: Mapping[str, Any]) -> Iterator[S3Object]:
    for state in (definition.get("States") or {}).values():
        writer = state.get("ResultWriter")
        if isinstance(writer, dict):
            parameters = writer.get("Parameters") or writer.get("Arguments") or {}
            if isinstance(parameters.get("Bucket"), str):
                yield parameters["Bucket"], str(parameters.get("Prefix", ""))
        for branch in state.get("Branches", []):
            yield from _result_writers(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            yield from _result_writers(processor)


def map_run_id(map_run_arn: str) -> str:
    """The id AWS names the ResultWriter folder after: the part after the last ':' of the map run ARN."""
    return map_run_arn.rsplit(":", 1)[-1]


def manifests_of_map_runs(
    s3: Any, definition: Mapping[str, Any], map_run_arns: Iterable[str]
) -> list[S3Object]:
    """The manifests these map runs wrote: ``<Prefix>/<map run id>/manifest.json`` where it exists."""
    found: list[S3Object] = []
    writers = result_writers(definition)
    for arn in map_run_arns:
        for bucket, prefix in writers:
            key = f"{prefix.rstrip('/')}/{map_run_id(arn)}/manifest.json".lstrip("/")
            if _exists(s3, bucket, key):
                found.append((bucket, key))
    return found


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise ResultReadError(f"Cannot read s3://{bucket}/{key}: {code or exc}.") from exc
    except BotoCoreError as exc:
        raise ResultReadError(f"Cannot read s3://{bucket}/{key}: {exc}") from exc
    return True


# ------------------------------------------------------------------------------------------ failed items


def failed_items(s3: Any, manifests: Iterable[S3Object]) -> Iterator[ItemResult]:
    """Every failed item (failed, timed-out and aborted children) of these manifests, streamed."""
    for bucket, key in manifests:
        yield from iter_failed(bucket, key, s3=s3)


def first_failure(s3: Any, manifests: Iterable[S3Object]) -> tuple[ItemResult | None, int]:
    """The failed item of lowest index and how many items failed.

    A failed batch is recorded once for all its items: where its error names the item that raised
    (compute_handler marks it, ``[item 7] ...``), that item is the one reported, not the batch's first.
    It explains a failure that is reported anyway, so a manifest or file that cannot be read only loses
    its detail: it is skipped.
    """
    first: ItemResult | None = None
    count = 0
    for bucket, key in manifests:
        try:
            for failed in iter_failed(bucket, key, s3=s3):
                if first is None or _item_order(failed) < _item_order(first):
                    first = failed
                count += 1
        except UNREADABLE:
            continue
    return first, count


def _item_order(failed: ItemResult) -> tuple[bool, bool, int]:
    culprit = failing_index(failed)
    bystander = culprit is not None and failed.index is not None and culprit != failed.index
    return (bystander, failed.index is None, failed.index or 0)


def failing_index(failed: ItemResult) -> int | None:
    """The index of the item that raised, when the failed record's error message names it."""
    return failed_item_index(error_message(failed.cause))


def error_message(cause: str | None) -> str:
    """A Lambda error's cause is its error document as JSON: its errorMessage (else the cause itself)."""
    if not cause:
        return ""
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return document["errorMessage"]
    return cause


def failed_item_record(failed: ItemResult) -> dict[str, Any]:
    """One entry of failed_items.json."""
    return {"index": failed.index, "item": failed.item, "error": failed.error, "cause": failed.cause}


# ------------------------------------------------------------------------------------------ download


def download_results(s3: Any, manifests: list[S3Object], directory: Path | str) -> DownloadedResults:
    """Copy each manifest and the result files it lists into ``directory``, and write failed_items.json.

    One manifest goes to ``directory/manifest.json``; several go to one folder per map run
    (``directory/<map run id>/manifest.json``). A result file keeps its key's path below the manifest's
    folder (``SUCCEEDED_0.json``). Bodies are streamed to disk, never held whole.
    """
    if not manifests:
        raise ValueError("download_results needs at least one manifest")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    downloaded: DownloadedResults | None = None
    failed: list[dict[str, Any]] = []
    for bucket, key in manifests:
        folder = PurePosixPath(key).parent
        root = directory if len(manifests) == 1 else directory / folder.name
        manifest_path = _copy_object(s3, bucket, key, root / "manifest.json")
        downloaded = downloaded or DownloadedResults(directory=directory, manifest=manifest_path)
        downloaded.manifests.append(manifest_path)
        manifest = read_manifest(bucket, key, s3=s3)
        for files in manifest.result_files.values():
            for result_file in files:
                target = _target(root, folder, PurePosixPath(result_file.key))
                downloaded.result_files.append(_copy_object(s3, result_file.bucket, result_file.key, target))
        failed_files = iter_manifest_results(manifest, statuses=("FAILED",), s3=s3, workers=1)
        failed += map(failed_item_record, failed_files)
    assert downloaded is not None
    downloaded.failed_items = directory / FAILED_ITEMS_FILE
    downloaded.failed_items.write_text(json.dumps(failed, indent=2), encoding="utf-8")
    downloaded.failed_count = len(failed)
    return downloaded


def copy_prefix(s3: Any, bucket: str, prefix: str, directory: Path) -> list[Path]:
    """Copy every object under ``prefix`` to ``directory/<key>``; a key that would leave it is skipped."""
    root = directory.resolve()
    written: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            target = (root / key).resolve()
            if key.endswith("/") or not target.is_relative_to(root):
                continue  # a folder marker, or a key like "output/../x" that would write outside directory
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            written.append(target)
    return written


def _target(root: Path, folder: PurePosixPath, key: PurePosixPath) -> Path:
    """Where a result file goes: its path below the manifest's folder, else its name; never outside root."""
    relative = key.relative_to(folder) if key.is_relative_to(folder) else PurePosixPath(key.name)
    target = root / relative
    if ".." in relative.parts:
        target = root / key.name
    return target


def _copy_object(s3: Any, bucket: str, key: str, target: Path) -> Path:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Error")
        raise ResultReadError(f"Cannot read s3://{bucket}/{key}: {code}.") from exc
    except BotoCoreError as exc:
        raise ResultReadError(f"Cannot read s3://{bucket}/{key}: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:
        for chunk in body_chunks(body):
            handle.write(chunk)
    return target
