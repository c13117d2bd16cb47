"""The default combiner: the exact sum of every item's result, the item counts and the first failed items.

Event (BurstCompute's Combine task)::

    {"results": {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}, "parameters": {...}, "count": N,
     "batched": true | false}

(``batched``: whether a COMPACT record is a batch's list of results.) Output, the execution's output
(docs/architecture.md)::

    {"total_sum": "<decimal>", "succeeded": S, "failed": F, "failed_items": [...], "manifest": "s3://b/k"}

Results are added one at a time as they stream in (never a list of them). The combine Lambda
(``lambdas/combine``) is one call to :func:`combine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from burstmap.runtime.concurrent_reads import DEFAULT_WORKERS
from burstmap.runtime.contracts import (
    FAILED_ITEMS_LIMIT,
    CombineOutput,
    FailedItemReport,
    InvalidCombineEvent,
    InvalidResult,
    decimal_to_int,
    int_to_decimal,
    json_size,
    short_json,
)
from burstmap.runtime.results import ItemResult, iter_manifest_results, read_manifest
from burstmap.runtime.s3_objects import default_s3_client

FAILED_ITEMS_MAX_BYTES = 64 * 1024
"""Budget (bytes of JSON) of ``failed_items``: the combine output is the execution's output (<= 256 KiB)."""


def combine(event: Any, *, s3: Any = None, workers: int = DEFAULT_WORKERS) -> CombineOutput:
    """Sum the results under the manifest the event names."""
    bucket, key = manifest_location(event)
    return summarize(bucket, key, s3=s3, workers=workers, batched=batched_flag(event))


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
        f"The result of {result.describe()} is {short_json(output)}: the default combiner adds integers or "
        "decimal strings (a batch returns a list of them). Return one, or use your own combiner "
        "(burstmap.runtime.results.iter_results)."
    )


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
            f"got {short_json(value)}."
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
            f"and pass $.results to the combine task; got {short_json(event, 200)}."
        )
    return details["Bucket"], details["Key"]
