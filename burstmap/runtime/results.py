"""Read a Distributed Map's ResultWriter output from S3, streaming: the manifest, then one result per item.

Layout (AWS developer guide, "ResultWriter (Map)"): the Map state's output names
``ResultWriterDetails: {Bucket, Key}``, the key of ``manifest.json``::

    {"DestinationBucket": "b", "MapRunArn": "arn:...",
     "ResultFiles": {"FAILED": [{"Key": "...", "Size": 123}], "PENDING": [...], "SUCCEEDED": [...]}}

Each result file holds records, as one JSON array (``WriterConfig.OutputType`` JSON, the default) or one
JSON value a line (JSONL; the file name ends ``.jsonl``). What a record is depends on
``WriterConfig.Transformation``:

* NONE (the default with an S3 destination): one object per child execution, ``ExecutionArn``, ``Name``,
  ``Input`` (JSON text), ``Output`` (JSON text; absent on failure), ``Status``, ``Error``, ``Cause``,
  dates, ...;
* COMPACT: the child's output alone (a batch's output is its list of results);
* FLATTEN: like COMPACT, with a child's array output flattened into one record per element.

Failed children are written as NONE records whatever the transformation.

A COMPACT record does not say whether its child ran a batch: ``batched=True`` reads every record as a list
of one result per item, ``batched=False`` as one item's output (a list output stays one result), and
``batched=None`` guesses (a list is a batch). BurstCompute passes ``"batched"`` to its combine task.

Reading is bounded in memory: files are decoded record by record (:mod:`burstmap.runtime.json_stream`),
several at once (:mod:`burstmap.runtime.concurrent_reads`). Standard library and boto3 only: this module
runs inside Lambda. The exact sum over these results is :mod:`burstmap.runtime.combine`, and so is
``combine_handler``, the simplest way to write a combiner of your own; reading the files directly is a
few lines too (only SUCCEEDED files have outputs: a failed item's is None)::

    from burstmap.runtime.results import iter_results

    def handler(event, context):
        details = event["results"]["ResultWriterDetails"]
        succeeded = iter_results(details["Bucket"], details["Key"], statuses=("SUCCEEDED",))
        best = max((int(result.output) for result in succeeded), default=None)
        return {"best": None if best is None else str(best)}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from burstmap.runtime.concurrent_reads import DEFAULT_WORKERS, read_concurrently
from burstmap.runtime.contracts import InvalidResult, InvalidResultFile, short_json
from burstmap.runtime.json_stream import body_chunks, iter_json_array, iter_json_lines, loads
from burstmap.runtime.s3_objects import default_s3_client

__all__ = [
    "STATUSES",
    "ItemResult",
    "Manifest",
    "ResultFile",
    "ResultReadError",
    "body_chunks",
    "default_s3_client",
    "item_results_of_record",
    "iter_failed",
    "iter_manifest_results",
    "iter_results",
    "read_manifest",
]

STATUSES = ("SUCCEEDED", "FAILED", "PENDING")


class ResultReadError(Exception):
    """S3 refused a read of the manifest or a result file; the message names the object and the AWS error."""


# ---------------------------------------------------------------------------------------------------
# the manifest


@dataclass(frozen=True)
class ResultFile:
    bucket: str
    key: str
    status: str
    size: int | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_jsonl(self) -> bool:
        return self.key.lower().endswith(".jsonl")


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of one map run."""

    bucket: str
    key: str
    map_run_arn: str | None
    result_files: Mapping[str, tuple[ResultFile, ...]]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def files(self, *statuses: str) -> list[ResultFile]:
        return [file for status in statuses for file in self.result_files.get(status, ())]


def read_manifest(bucket: str, key: str, *, s3: Any = None) -> Manifest:
    """Fetch and check ``manifest.json``; the result files are in ``DestinationBucket`` (else ``bucket``)."""
    uri = f"s3://{bucket}/{key}"
    body = _get_object(s3 or default_s3_client(), bucket, key).read()
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidResultFile(f"{uri} is not JSON ({exc}): is it a ResultWriter manifest.json?") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("ResultFiles"), Mapping):
        raise InvalidResultFile(
            f'{uri} has no "ResultFiles" object: a ResultWriter manifest is '
            '{"DestinationBucket", "MapRunArn", "ResultFiles": {"SUCCEEDED": [...], "FAILED": [...], ...}}.'
        )
    destination = document.get("DestinationBucket") or bucket
    result_files: dict[str, tuple[ResultFile, ...]] = {}
    for status, entries in document["ResultFiles"].items():
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) and "Key" in e for e in entries):
            raise InvalidResultFile(
                f'{uri}: ResultFiles.{status} must be a list of {{"Key", "Size"}} objects.'
            )
        result_files[status] = tuple(
            ResultFile(destination, e["Key"], status, e.get("Size")) for e in entries
        )
    return Manifest(bucket, key, document.get("MapRunArn"), result_files)


# ---------------------------------------------------------------------------------------------------
# one result per item


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome; ``index`` and ``item`` are None where the layout drops them (COMPACT).

    ``status`` is the child's Status where the record has one (FAILED files also hold TIMED_OUT and
    ABORTED children), else the result file's status.
    """

    status: str
    output: Any
    index: int | None = None
    item: Any = None
    error: str | None = None
    cause: str | None = None
    execution_arn: str | None = None
    source: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def describe(self) -> str:
        """Which item this is, for error messages."""
        parts = []
        if self.index is not None:
            parts.append(f"item {self.index}")
        if self.item is not None:
            parts.append(f"(value {short_json(self.item)})")
        if self.execution_arn:
            parts.append(f"of child execution {self.execution_arn}")
        parts.append(f"in {self.source}" if parts else f"record {self.source}")
        return " ".join(parts)


def iter_results(
    bucket: str,
    key: str,
    *,
    statuses: Iterable[str] = ("SUCCEEDED", "FAILED"),
    s3: Any = None,
    workers: int = DEFAULT_WORKERS,
    batched: bool | None = None,
) -> Iterator[ItemResult]:
    """Every item's result under the manifest ``s3://bucket/key``, streamed (a batch gives one per item).

    With ``workers`` > 1 several files are read at once and items of different files interleave;
    ``workers=1`` keeps the manifest's order. ``batched``: how to read COMPACT records (module docstring).
    """
    s3 = s3 or default_s3_client()
    manifest = read_manifest(bucket, key, s3=s3)
    yield from iter_manifest_results(manifest, statuses=statuses, s3=s3, workers=workers, batched=batched)


def iter_failed(bucket: str, key: str, *, s3: Any = None) -> Iterator[ItemResult]:
    """The failed items (FAILED files: failed, timed-out and aborted children), in the manifest's order."""
    return iter_results(bucket, key, statuses=("FAILED",), s3=s3, workers=1)


def iter_manifest_results(
    manifest: Manifest,
    *,
    statuses: Iterable[str] = ("SUCCEEDED", "FAILED"),
    s3: Any = None,
    workers: int = DEFAULT_WORKERS,
    batched: bool | None = None,
) -> Iterator[ItemResult]:
    """Every item's result in the manifest's files of ``statuses`` (see :func:`iter_results`)."""
    s3 = s3 or default_s3_client()
    files = manifest.files(*statuses)

    def read(file: ResultFile) -> Iterator[ItemResult]:
        for number, record in enumerate(_records_of_file(s3, file)):
            yield from item_results_of_record(
                record, file.status, f"{file.uri} record {number}", batched=batched
            )

    return read_concurrently(files, read, workers=workers)


def item_results_of_record(
    record: Any, status: str, source: str, *, batched: bool | None = None
) -> Iterator[ItemResult]:
    """Split one result-file record into per-item results (a batch child holds several items)."""
    if not _is_execution_record(record):
        # COMPACT / FLATTEN: the output alone; a batch's output is its list of results.
        if batched and not isinstance(record, list):
            raise InvalidResult(
                f"The batch child's output ({source}) is {short_json(record)}: a batched compute function "
                "returns a list with one result per item (burstmap.compute_handler does this)."
            )
        is_batch = isinstance(record, list) if batched is None else batched
        for output in record if is_batch else [record]:
            yield ItemResult(status=status, output=output, source=source)
        return
    arn = record.get("ExecutionArn")
    child_input = _json_field(record, "Input", source)
    output = _json_field(record, "Output", source) if status == "SUCCEEDED" else None
    error, cause = record.get("Error"), record.get("Cause")
    # The FAILED files also hold TIMED_OUT and ABORTED children: report the child's own status.
    reported = record["Status"] if isinstance(record["Status"], str) else status
    if isinstance(child_input, Mapping) and isinstance(child_input.get("Items"), list):
        entries = child_input["Items"]
        if status == "SUCCEEDED" and (not isinstance(output, list) or len(output) != len(entries)):
            raise InvalidResult(
                f"The batch child {arn} ({source}) had {len(entries)} items but returned "
                f"{short_json(output)}: a batched compute function returns a list with one result per item "
                "(burstmap.compute_handler does this)."
            )
        outputs = output if status == "SUCCEEDED" else [None] * len(entries)
        for entry, item_output in zip(entries, outputs, strict=True):
            index, item = _index_and_item(entry)
            yield ItemResult(reported, item_output, index, item, error, cause, arn, source)
        return
    index, item = _index_and_item(child_input)
    yield ItemResult(reported, output, index, item, error, cause, arn, source)


def _is_execution_record(record: Any) -> bool:
    return isinstance(record, Mapping) and "ExecutionArn" in record and "Status" in record


def _index_and_item(entry: Any) -> tuple[int | None, Any]:
    """``{"item": v, "index": i}`` as burstmap's ItemSelector makes it; anything else is the item itself."""
    if isinstance(entry, Mapping) and "item" in entry:
        index = entry.get("index")
        return (index if isinstance(index, int) and not isinstance(index, bool) else None), entry["item"]
    return None, entry


def _json_field(record: Mapping[str, Any], name: str, source: str) -> Any:
    """``Input`` / ``Output`` are JSON text in a NONE record."""
    text = record.get(name)
    if not isinstance(text, str):
        return text
    try:
        return loads(text)
    except ValueError as exc:
        raise InvalidResultFile(f"{source}: {name} is not JSON text ({exc}).") from exc


# ---------------------------------------------------------------------------------------------------
# S3


def _records_of_file(s3: Any, file: ResultFile) -> Iterator[Any]:
    chunks = body_chunks(_get_object(s3, file.bucket, file.key))
    if file.is_jsonl:
        return iter_json_lines(chunks, file.uri)
    return iter_json_array(chunks, file.uri)


def _get_object(s3: Any, bucket: str, key: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Error")
        raise ResultReadError(
            f"Cannot read s3://{bucket}/{key}: {code}. The object must exist and this function needs "
            "s3:GetObject on it (BurstCompute grants the combine function read access to the result prefix)."
        ) from exc
    except BotoCoreError as exc:
        raise ResultReadError(f"Cannot read s3://{bucket}/{key}: {exc}") from exc
