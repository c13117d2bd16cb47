"""Read a Distributed Map's ResultWriter output from S3, streaming, and add the results up exactly.

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

Reading is bounded in memory: a file is read in chunks and decoded record by record (JSON arrays with
:class:`json.JSONDecoder.raw_decode`, JSONL line by line), several files at once on a bounded thread pool
whose hand-over queue is bounded too. Standard library and boto3 only: this module runs inside Lambda.

A custom combiner is a few lines::

    from burstmap.runtime.results import iter_results

    def handler(event, context):
        details = event["results"]["ResultWriterDetails"]
        best = max(int(r.output) for r in iter_results(details["Bucket"], details["Key"]))
        return {"best": str(best)}
"""

from __future__ import annotations

import codecs
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from burstmap.runtime.contracts import (
    FAILED_ITEMS_LIMIT,
    CombineOutput,
    FailedItemReport,
    InvalidCombineEvent,
    InvalidResult,
    InvalidResultFile,
    decimal_to_int,
    int_to_decimal,
    json_size,
)

STATUSES = ("SUCCEEDED", "FAILED", "PENDING")
READ_CHUNK_BYTES = 1024 * 1024
"""Bytes read from S3 at a time; a JSON-array file is decoded from a buffer of about this size."""
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""A record larger than this cannot be a child execution's record (inputs and outputs are <= 256 KiB each)."""
DEFAULT_WORKERS = 4
"""Result files read at once: S3 latency overlaps with decoding; more threads only contend for the GIL."""
RECORDS_PER_HANDOVER = 256
"""Records a reading thread hands to the consumer at once (fewer queue operations than one by one)."""
MAX_PENDING_HANDOVERS = 8
"""Hand-overs waiting for the consumer: with the above, at most 2,048 records (+ a hand-over per thread)."""
FAILED_ITEMS_MAX_BYTES = 64 * 1024
"""Budget (bytes of JSON) of ``failed_items``: the combine output is the execution's output (<= 256 KiB)."""


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
            parts.append(f"(value {_short(self.item)})")
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
                f"The batch child's output ({source}) is {_short(record)}: a batched compute function "
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
                f"The batch child {arn} ({source}) had {len(entries)} items but returned {_short(output)}: "
                "a batched compute function returns a list with one result per item "
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
# the exact sum (the default combiner)


def result_as_int(result: ItemResult) -> int:
    """An item's output as an exact integer: an int, or a decimal string; InvalidResult names the item."""
    output = result.output
    if isinstance(output, int) and not isinstance(output, bool):
        return output
    if isinstance(output, str):
        try:
            return decimal_to_int(output)
        except ValueError:
            pass
    raise InvalidResult(
        f"The result of {result.describe()} is {_short(output)}: the default combiner adds integers or "
        "decimal strings (a batch returns a list of them). Return one, or use your own combiner "
        "(burstmap.runtime.results.iter_results)."
    )


def summarize(
    bucket: str,
    key: str,
    *,
    s3: Any = None,
    workers: int = DEFAULT_WORKERS,
    batched: bool | None = None,
) -> CombineOutput:
    """The default combine output for the manifest ``s3://bucket/key``: exact sum, counts, failed items."""
    s3 = s3 or default_s3_client()
    manifest = read_manifest(bucket, key, s3=s3)
    total, succeeded = exact_sum(
        iter_manifest_results(manifest, statuses=("SUCCEEDED",), s3=s3, workers=workers, batched=batched)
    )
    failed, failed_items = failed_report(
        iter_manifest_results(manifest, statuses=("FAILED",), s3=s3, workers=1)
    )
    return {
        "total_sum": int_to_decimal(total),
        "succeeded": succeeded,
        "failed": failed,
        "failed_items": failed_items,
        "manifest": manifest.uri,
    }


def exact_sum(results: Iterable[ItemResult]) -> tuple[int, int]:
    """``(sum, count)`` of the results, one at a time (never a list of them)."""
    total = 0
    count = 0
    for result in results:
        total += result_as_int(result)
        count += 1
    return total, count


def failed_report(
    results: Iterable[ItemResult],
    *,
    limit: int = FAILED_ITEMS_LIMIT,
    max_bytes: int = FAILED_ITEMS_MAX_BYTES,
) -> tuple[int, list[FailedItemReport]]:
    """``(count, first failed items)``: exact count; the list stops at ``limit`` entries or ``max_bytes``."""
    count = 0
    reports: list[FailedItemReport] = []
    used = 2
    for result in results:
        count += 1
        if len(reports) >= limit:
            continue
        report: FailedItemReport = {"index": result.index, "item": result.item, "error": result.error}
        size = json_size(report) + 2
        if used + size <= max_bytes:
            reports.append(report)
            used += size
    return count, reports


def batched_flag(event: Any) -> bool | None:
    """The combine event's ``batched`` (true, false, or absent: None); anything else is an error."""
    value = event.get("batched") if isinstance(event, Mapping) else None
    if value is not None and not isinstance(value, bool):
        raise InvalidCombineEvent(
            f'The combine event\'s "batched" must be true or false (whether the Map has an ItemBatcher), '
            f"got {_short(value)}."
        )
    return value


def manifest_location(event: Any) -> tuple[str, str]:
    """The manifest's ``(bucket, key)`` in ``{"results": {"ResultWriterDetails": ...}}``."""
    details = None
    if isinstance(event, Mapping) and isinstance(event.get("results"), Mapping):
        details = event["results"].get("ResultWriterDetails")
    if not (
        isinstance(details, Mapping)
        and isinstance(details.get("Bucket"), str)
        and isinstance(details.get("Key"), str)
    ):
        raise InvalidCombineEvent(
            'The combine function expects {"results": {"ResultWriterDetails": {"Bucket": ..., "Key": '
            '".../manifest.json"}}}: give the Distributed Map a ResultWriter and ResultPath "$.results", '
            f"and pass $.results to the combine task; got {_short(event, 200)}."
        )
    return details["Bucket"], details["Key"]


# ---------------------------------------------------------------------------------------------------
# streaming decoders

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_BIG_INT_DECODER = json.JSONDecoder(parse_int=decimal_to_int)


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


_NUMBER_CHARACTERS = frozenset("0123456789.eE+-")


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


def _records_of_file(s3: Any, file: ResultFile) -> Iterator[Any]:
    chunks = body_chunks(_get_object(s3, file.bucket, file.key))
    if file.is_jsonl:
        return iter_json_lines(chunks, file.uri)
    return iter_json_array(chunks, file.uri)


# ---------------------------------------------------------------------------------------------------
# reading several files at once


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def read_concurrently(
    sources: list[Any], read: Callable[[Any], Iterable[Any]], *, workers: int = DEFAULT_WORKERS
) -> Iterator[Any]:
    """Everything ``read(source)`` yields for every source, ``workers`` sources at a time.

    Reading threads hand records over through a bounded queue, so at most about
    ``(MAX_PENDING_HANDOVERS + workers) * RECORDS_PER_HANDOVER`` records are in memory whatever the total.
    Order is kept within a source; sources interleave. Closing the iterator early stops the threads.
    """
    workers = max(1, min(workers, len(sources)))
    if workers == 1:
        for source in sources:
            yield from read(source)
        return
    handovers: queue.Queue[Any] = queue.Queue(maxsize=MAX_PENDING_HANDOVERS)
    stop = threading.Event()
    lock = threading.Lock()
    remaining = iter(sources)

    def hand_over(value: Any) -> bool:
        while not stop.is_set():
            try:
                handovers.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    source = next(remaining, None)
                if source is None:
                    break
                batch: list[Any] = []
                for record in read(source):
                    batch.append(record)
                    if len(batch) >= RECORDS_PER_HANDOVER:
                        if not hand_over(batch):
                            return
                        batch = []
                if batch and not hand_over(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            hand_over(_Failure(exc))
        finally:
            hand_over(_DONE)

    threads = [
        threading.Thread(target=work, name=f"burstmap-results-{n}", daemon=True) for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < workers:
            handover = handovers.get()
            if handover is _DONE:
                finished += 1
            elif isinstance(handover, _Failure):
                raise handover.error
            else:
                yield from handover
                del handover
    finally:
        stop.set()
        for thread in threads:
            thread.join()


# ---------------------------------------------------------------------------------------------------
# S3

_S3_CLIENT: Any = None


def default_s3_client() -> Any:
    """One boto3 S3 client per process (thread-safe; honours AWS_ENDPOINT_URL_S3 for a local endpoint)."""
    global _S3_CLIENT
    if _S3_CLIENT is None:
        import boto3

        _S3_CLIENT = boto3.client("s3")
    return _S3_CLIENT


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


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
