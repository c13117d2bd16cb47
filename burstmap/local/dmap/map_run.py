"""Distributed Map: one map run, from its items to its result.

`run_distributed_map` is called by the Map state (states/map_distributed.py) with the state's
effective input (after InputPath) and returns the Map's raw result (before ResultSelector /
ResultPath). The pieces, each in the module named after it: settings (the state's fields),
item_reader and item_text (where items come from), item_selector and item_batcher (what each child
gets), dispatch and direct_task (running the children), result_writer (where results go), child
(a child execution's names, context and record). Children are run through the `run_child`
callback (core.protocols.RunChild), so this package never imports the states.

Memory is bounded by the concurrency: items are read lazily, at most one batch per running child
is held, and with a ResultWriter each record is spooled to disk as it completes. Without a
ResultWriter the outputs are the state's output and are kept, in item order, as AWS returns them.

Sources for the behaviour: AWS developer guide pages "ItemReader (Map)", "ItemBatcher (Map)",
"ResultWriter (Map)" and "Distributed Map state", and the AWS-recorded conformance cases under
shared/conformance/cases/map_distributed and map_item_reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from burstmap.local.core.context import MapRunSummary, Services, iso_timestamp
from burstmap.local.core.protocols import RunChild
from burstmap.local.dmap.child import Batch, ChildOutcome, MapRunIdentity, map_run_identity
from burstmap.local.dmap.direct_task import DirectLambdaTask
from burstmap.local.dmap.dispatch import Children, pool_size, start_children, tolerance_exceeded
from burstmap.local.dmap.item_reader import read_items
from burstmap.local.dmap.item_selector import SelectItem, child_inputs
from burstmap.local.dmap.result_writer import RESULT_FILE_MAX_BYTES, MapResults
from burstmap.local.dmap.settings import MapSettings

__all__ = ["MapRun", "MapRunCounts", "run_distributed_map"]


@dataclass
class MapRunCounts:
    """Counts as DescribeMapRun reports them (itemCounts counts items, executionCounts children)."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timedOut: int = 0  # noqa: N815 - DescribeMapRun's name
    aborted: int = 0
    total: int = 0
    resultsWritten: int = 0  # noqa: N815 - DescribeMapRun's name

    def as_dict(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timedOut": self.timedOut,
            "aborted": self.aborted,
            "total": self.total,
            "resultsWritten": self.resultsWritten,
        }


@dataclass
class MapRun:
    """One run of a distributed Map state: what ListMapRuns / DescribeMapRun would show."""

    map_run_arn: str
    state_name: str
    label: str
    max_concurrency: int
    tolerated_failure_count: int | None
    tolerated_failure_percentage: float | None
    status: str = "RUNNING"
    start_date: str = field(default_factory=iso_timestamp)
    stop_date: str | None = None
    item_counts: MapRunCounts = field(default_factory=MapRunCounts)
    execution_counts: MapRunCounts = field(default_factory=MapRunCounts)
    items_read_complete: bool = False
    """True once the item reader is exhausted: `total` is final from then on."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Counts are read by progress callbacks on other threads."""

    @classmethod
    def start(cls, identity: MapRunIdentity, state_name: str, settings: MapSettings) -> MapRun:
        return cls(
            identity.map_run_arn,
            state_name,
            identity.label,
            settings.max_concurrency,
            settings.tolerated_count,
            settings.tolerated_percentage,
        )

    def read(self, batch: Batch) -> None:
        """A child's input was read (and its items counted in the total)."""
        with self._lock:
            self.item_counts.total += batch.item_count
            self.execution_counts.total += 1

    def started(self, batch: Batch) -> None:
        with self._lock:
            self.item_counts.running += batch.item_count
            self.execution_counts.running += 1

    def finished(self, outcome: ChildOutcome, written: bool) -> None:
        """A child ended (and its record was written to the ResultWriter's files)."""
        ended = "succeeded" if outcome.succeeded else "failed"
        with self._lock:
            for counts, amount in ((self.item_counts, outcome.batch.item_count), (self.execution_counts, 1)):
                counts.running -= amount
                setattr(counts, ended, getattr(counts, ended) + amount)
                if written:
                    counts.resultsWritten += amount

    def not_started(self, batch: Batch) -> None:
        """A child never started because the map run failed."""
        with self._lock:
            self.item_counts.pending += batch.item_count
            self.execution_counts.pending += 1

    def all_read(self) -> None:
        with self._lock:
            self.items_read_complete = True

    def ended(self, status: str) -> None:
        self.status = status
        self.stop_date = iso_timestamp()

    def tolerance_exceeded(self, settings: MapSettings) -> bool:
        return tolerance_exceeded(
            self.item_counts.failed,
            self.item_counts.total,
            self.items_read_complete,
            settings.tolerated_count,
            settings.tolerated_percentage,
        )

    def summary(self) -> MapRunSummary:
        """The counts an ExecutionResult reports for this map run."""
        return MapRunSummary(
            map_run_arn=self.map_run_arn,
            state_name=self.state_name,
            status=self.status,
            item_counts=self.item_counts.as_dict(),
            execution_counts=self.execution_counts.as_dict(),
        )

    def describe(self) -> dict[str, Any]:
        """A DescribeMapRun-shaped snapshot."""
        return {
            "mapRunArn": self.map_run_arn,
            "status": self.status,
            "startDate": self.start_date,
            **({"stopDate": self.stop_date} if self.stop_date else {}),
            "maxConcurrency": self.max_concurrency,
            "toleratedFailurePercentage": self.tolerated_failure_percentage or 0.0,
            "toleratedFailureCount": self.tolerated_failure_count or 0,
            "itemCounts": self.item_counts.as_dict(),
            "executionCounts": self.execution_counts.as_dict(),
        }


def run_distributed_map(
    state_name: str,
    state: dict[str, Any],
    effective_input: Any,
    context: dict[str, Any],
    services: Services,
    run_child: RunChild,
    *,
    on_progress: Callable[[MapRun], None] | None = None,
    result_file_max_bytes: int = RESULT_FILE_MAX_BYTES,
    select_item: SelectItem | None = None,
) -> Any:
    """Run one distributed Map state and return its raw result (before ResultSelector/ResultPath).

    Without a ResultWriter destination: the list of child outputs in item order (a failed child
    within tolerance appears as its full execution record, as AWS documents). With one:
    {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}. Past the tolerated failures it raises
    States.ExceedToleratedFailureThreshold, after writing the results (PENDING for unstarted items).

    The MapRun is appended to `services.map_runs`; `on_progress` (default
    `services.on_map_run_progress`) is called with it as children end. `select_item(value,
    item_context)` replaces the state's ItemSelector (a JSONata ItemSelector).
    """
    settings = MapSettings.resolve(state, effective_input, context)
    identity = map_run_identity(state_name, state, context)
    pool = pool_size(settings.max_concurrency, services)
    run = MapRun.start(identity, state_name, settings)
    services.map_runs.append(run)
    results = MapResults.open(
        state_name, state, effective_input, context, services.s3, identity, result_file_max_bytes
    )
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    direct = DirectLambdaTask.for_processor(processor, services)
    batches = _batches(state_name, state, effective_input, context, services, settings, direct, select_item)
    role_arn = (context.get("Execution") or {}).get("RoleArn")
    children = start_children(direct, services, identity, pool, run_child, role_arn)
    progress = on_progress or services.on_map_run_progress
    exceeded = _MapRunLoop(run, settings, results, children, progress).run(batches, pool)
    return results.finish(identity.map_run_arn, exceeded)


def _batches(
    state_name: str,
    state: dict[str, Any],
    data: Any,
    context: dict[str, Any],
    services: Services,
    settings: MapSettings,
    direct: DirectLambdaTask | None,
    select_item: SelectItem | None,
) -> Iterator[Batch]:
    """Each child's input, read lazily (errors in finding the items are raised at once)."""
    # Children that send their whole input as the payload need only the items' text.
    unparsed_integers = (
        direct is not None
        and settings.batcher is not None
        and settings.batcher.max_items is not None
        and state.get("ItemSelector", state.get("Parameters")) is None
        and select_item is None
    )
    items = read_items(state_name, state, data, context, services.s3, unparsed_integers=unparsed_integers)
    return child_inputs(state_name, state, items, data, context, settings.batcher, select_item)


class _MapRunLoop:
    """Starts the children as their inputs are read, at most `pool` at once, and stops starting
    them once the failures pass the tolerated threshold (the rest are counted as pending)."""

    def __init__(
        self,
        run: MapRun,
        settings: MapSettings,
        results: MapResults,
        children: Children,
        progress: Callable[[MapRun], None] | None,
    ) -> None:
        self.run_record = run
        self.settings = settings
        self.results = results
        self.children = children
        self.progress = progress
        self.exceeded = False

    def run(self, batches: Iterator[Batch], pool: int) -> bool:
        """Run every child; True when the tolerated failures were exceeded."""
        run, children = self.run_record, self.children
        try:
            for batch in batches:
                run.read(batch)
                while len(children) >= pool:
                    self._collect()
                if self.exceeded:
                    self._not_started(batch, batches)
                    break
                run.started(batch)
                children.start(batch)
            run.all_read()
            while len(children):
                self._collect()
            self.exceeded = self.exceeded or run.tolerance_exceeded(self.settings)
        except BaseException:
            run.ended("FAILED")
            children.close(cancel=True)
            self.results.close()
            raise
        children.close(cancel=False)
        run.ended("FAILED" if self.exceeded else "SUCCEEDED")
        if self.progress is not None:
            self.progress(run)
        return self.exceeded

    def _collect(self) -> None:
        """Wait for at least one running child, record every finished one, check tolerance."""
        self.children.collect(self._record)
        if self.run_record.tolerance_exceeded(self.settings):
            self.exceeded = True

    def _record(self, outcome: ChildOutcome) -> None:
        self.results.add(outcome)
        self.run_record.finished(outcome, written=self.results.writer is not None)
        if self.progress is not None:
            self.progress(self.run_record)

    def _not_started(self, first: Batch, rest: Iterator[Batch]) -> None:
        """Items never started because the map run failed: counted as pending, written to PENDING_n."""
        self.run_record.not_started(first)
        self.results.add_pending(first)
        for batch in rest:
            self.run_record.read(batch)
            self.run_record.not_started(batch)
            self.results.add_pending(batch)
