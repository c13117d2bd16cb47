"""Combiners: the default one (the exact sum, the item counts and the first failed items), and
:func:`combine_handler`, which makes a combine Lambda of one reduce function, as compute_handler makes a
compute Lambda of one function.

Event (BurstCompute's Combine task)::

    {"results": {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}, "parameters": {...}, "count": N,
     "batched": true | false}

(``batched``: whether a COMPACT record is a batch's list of results.) The default output, the
execution's output (docs/architecture.md)::

    {"total_sum": "<decimal>", "succeeded": S, "failed": F, "failed_items": [...], "manifest": "s3://b/k"}

Results are streamed from the result files, one at a time (never a list of them). The default combine
Lambda (``lambdas/combine``) is one call to :func:`combine`.

A combiner of your own is one function over the succeeded results (an iterator of values) and the job
(its parameters, its item count, the failed items), for example a mean that stays exact to the last
bit whatever the order the results stream in::

    import math
    from burstmap.compute import combine_handler

    def mean(results, job):
        count = 0

        def counted():
            nonlocal count
            for value in results:
                count += 1
                yield value

        total = math.fsum(counted())  # exact sum of floats, unlike sum()
        return {"mean": total / count if count else None, "succeeded": count, "failed": len(job.failed),
                "failed_items": job.failed.report(), "manifest": job.manifest}

    handler = combine_handler(mean)          # BurstCompute(combine=<a function with this handler>)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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
    to_wire,
)
from burstmap.runtime.results import ItemResult, Manifest, iter_manifest_results, read_manifest
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


# ---------------------------------------------------------------------------------------------------
# a combiner of your own

ReduceFn = Callable[[Iterator[Any], "CombineJob"], Any]


class FailedItems:
    """The job's failed items (failed, timed-out and aborted children), read from the FAILED result files
    each time they are iterated, never held whole. ``len()`` counts them (one pass, then remembered)."""

    def __init__(self, manifest: Manifest, s3: Any) -> None:
        self._manifest = manifest
        self._s3 = s3
        self._count: int | None = None

    def __iter__(self) -> Iterator[ItemResult]:
        return iter_manifest_results(self._manifest, statuses=("FAILED",), s3=self._s3, workers=1)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count

    def report(self, limit: int = FAILED_ITEMS_LIMIT) -> list[FailedItemReport]:
        """The first failed items as the default combiner lists them (``{"index", "item", "error"}``)."""
        self._count, reports = failed_report(self, limit=limit)
        return reports


@dataclass(frozen=True)
class CombineJob:
    """What a reduce function knows of its job besides the results."""

    parameters: dict[str, Any]
    """The job's parameters (what every compute call received)."""
    count: int | None
    """How many items the job ran over (None where the event does not say: a job over S3 objects)."""
    manifest: str
    """``s3://bucket/key`` of the ResultWriter manifest the results were read from."""
    failed: FailedItems = field(repr=False)
    """The failed items: iterate them (ItemResult: index, item, error, cause), count them with len()."""


def combine_handler(reduce_fn: ReduceFn, *, s3: Any = None, workers: int = DEFAULT_WORKERS) -> Any:
    """A combine Lambda ``handler(event, context)`` from ``reduce_fn(results, job)``.

    ``results`` iterates the output of every succeeded item (a batch gives one per item), streamed from
    the result files (``workers`` files at a time, so not in item order); ``job`` is a
    :class:`CombineJob`. What ``reduce_fn`` returns is the execution's output (an integer past 2**53 as
    its decimal string, as compute_handler sends it). Failed items never reach ``results``: a job that
    tolerates failures gets the rest, and ``job.failed`` says which failed. Plug the function in as
    ``BurstCompute(combine=...)``.
    """

    def handler(event: Any, context: Any = None) -> Any:  # noqa: ARG001 - Lambda's signature
        bucket, key = manifest_location(event)
        client = s3 or default_s3_client()
        manifest = read_manifest(bucket, key, s3=client)
        results = iter_manifest_results(
            manifest, statuses=("SUCCEEDED",), s3=client, workers=workers, batched=batched_flag(event)
        )
        job = CombineJob(
            parameters=dict(event.get("parameters") or {}),
            count=event.get("count") if isinstance(event.get("count"), int) else None,
            manifest=manifest.uri,
            failed=FailedItems(manifest, client),
        )
        try:
            return to_wire(reduce_fn((result.output for result in results), job))
        finally:
            results.close()  # type: ignore[attr-defined] # a generator: an early stop ends the reading threads

    handler.reduce = reduce_fn  # type: ignore[attr-defined]
    handler.__doc__ = (
        f"Lambda handler combining results with {getattr(reduce_fn, '__qualname__', reduce_fn)!s}."
    )
    return handler
