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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from burstmap.local.core.context import Cancellation, EventCounter, MapRunSummary, Services, iso_timestamp
from burstmap.local.core.errors import ExecutionAborted, StatesError
from burstmap.local.core.history import error_details, map_run_redriven, map_run_started
from burstmap.local.core.json_text import to_json
from burstmap.local.core.protocols import RunChild
from burstmap.local.dmap.child import Batch, ChildOutcome, MapRunIdentity, map_run_identity
from burstmap.local.dmap.child_ledger import ChildLedger, ResumeAt
from burstmap.local.dmap.direct_task import DirectLambdaTask
from burstmap.local.dmap.dispatch import Children, pool_size, start_children, tolerance_exceeded
from burstmap.local.dmap.item_reader import read_items
from burstmap.local.dmap.item_selector import SelectItem, child_inputs
from burstmap.local.dmap.result_writer import RESULT_FILE_MAX_BYTES, MapResults
from burstmap.local.dmap.settings import MapSettings

__all__ = ["MapRun", "MapRunCounts", "MapRunRedrive", "run_distributed_map"]


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
    """One run of a distributed Map state: what ListMapRuns / DescribeMapRun show. Its counts move while
    it runs; read them with `describe()` (consistent, from any thread)."""

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
    execution_arn: str = ""
    """The execution that started it (the parent workflow)."""
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    redrive_count: int = 0
    redrive_date: datetime | None = None
    identity: MapRunIdentity | None = field(default=None, repr=False, compare=False)
    ledger: ChildLedger | None = field(default=None, repr=False, compare=False)
    """Its children, kept when the execution keeps child records (Services.keep_child_records)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Counts are read by progress callbacks on other threads."""

    @classmethod
    def start(
        cls,
        identity: MapRunIdentity,
        state_name: str,
        settings: MapSettings,
        *,
        execution_arn: str = "",
        redrive: MapRunRedrive | None = None,
        ledger: ChildLedger | None = None,
    ) -> MapRun:
        run = cls(
            identity.map_run_arn,
            state_name,
            identity.label,
            settings.max_concurrency,
            settings.tolerated_count,
            settings.tolerated_percentage,
            execution_arn=execution_arn,
            identity=identity,
            ledger=ledger,
        )
        if redrive is not None:  # the same map run, again: its ARN, start and child records
            run.start_time, run.start_date = redrive.start_time, iso_timestamp(redrive.start_time)
            run.redrive_count, run.redrive_date = identity.redrive_count, datetime.now(UTC)
        return run

    def read(self, batch: Batch) -> None:
        """A child's input was read (and its items counted in the total)."""
        with self._lock:
            self.item_counts.total += batch.item_count
            self.execution_counts.total += 1
        if self.ledger is not None:
            self.ledger.read(batch)

    def kept(self, batch: Batch, written: bool) -> None:
        """A child that succeeded before a redrive: not run again, counted as it ended."""
        with self._lock:
            for counts, amount in ((self.item_counts, batch.item_count), (self.execution_counts, 1)):
                counts.succeeded += amount
                if written:
                    counts.resultsWritten += amount

    def started(self, batch: Batch) -> None:
        with self._lock:
            self.item_counts.running += batch.item_count
            self.execution_counts.running += 1
        if self.ledger is not None:
            self.ledger.started(batch, time.time())

    def finished(self, outcome: ChildOutcome, written: bool) -> None:
        """A child ended (and its record was written to the ResultWriter's files)."""
        ended = "succeeded" if outcome.succeeded else "aborted" if outcome.aborted else "failed"
        with self._lock:
            for counts, amount in ((self.item_counts, outcome.batch.item_count), (self.execution_counts, 1)):
                counts.running -= amount
                setattr(counts, ended, getattr(counts, ended) + amount)
                if written:
                    counts.resultsWritten += amount
        if self.ledger is not None:
            if outcome.aborted:
                self.ledger.aborted(outcome)
            else:
                kept = to_json(outcome.output) if self.ledger.keep_outputs and outcome.succeeded else None
                self.ledger.finished(outcome, kept)

    def not_started(self, batch: Batch) -> None:
        """A child never started because the map run failed."""
        with self._lock:
            self.item_counts.pending += batch.item_count
            self.execution_counts.pending += 1

    def all_read(self) -> None:
        with self._lock:
            self.items_read_complete = True

    def ended(self, status: str) -> None:
        with self._lock:
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
        with self._lock:
            return MapRunSummary(
                map_run_arn=self.map_run_arn,
                state_name=self.state_name,
                status=self.status,
                item_counts=self.item_counts.as_dict(),
                execution_counts=self.execution_counts.as_dict(),
            )

    def describe(self) -> dict[str, Any]:
        """A DescribeMapRun-shaped snapshot, consistent while the run moves."""
        with self._lock:
            return {
                "mapRunArn": self.map_run_arn,
                "executionArn": self.execution_arn,
                "status": self.status,
                "startDate": self.start_date,
                **({"stopDate": self.stop_date} if self.stop_date else {}),
                "maxConcurrency": self.max_concurrency,
                "toleratedFailurePercentage": self.tolerated_failure_percentage or 0.0,
                "toleratedFailureCount": self.tolerated_failure_count or 0,
                "itemCounts": self.item_counts.as_dict(),
                "executionCounts": self.execution_counts.as_dict(),
                "redriveCount": self.redrive_count,
                **({"redriveDate": iso_timestamp(self.redrive_date)} if self.redrive_date else {}),
            }

    def resume_state(self) -> dict[str, Any] | None:
        """What a redrive of this map run needs (JSON-serializable), or None without child records."""
        if self.ledger is None or self.identity is None:
            return None
        identity = self.identity
        return {
            "region": identity.region,
            "account": identity.account,
            "state_machine_name": identity.state_machine_name,
            "label": identity.label,
            "map_run_id": identity.map_run_id,
            "execution_type": identity.execution_type,
            "redrive_count": self.redrive_count,
            "start_time": self.start_time.isoformat(),
            "ledger": self.ledger.to_json(),
        }


@dataclass
class MapRunRedrive:
    """A map run a redrive resumes: the same ARN and start, its children that succeeded kept."""

    identity: MapRunIdentity
    start_time: datetime
    ledger: ChildLedger

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> MapRunRedrive:
        """From `MapRun.resume_state()`; the identity counts this redrive."""
        identity = MapRunIdentity(
            data["region"],
            data["account"],
            data["state_machine_name"],
            data["label"],
            data["map_run_id"],
            data["execution_type"],
            int(data["redrive_count"]) + 1,
        )
        return cls(
            identity, datetime.fromisoformat(data["start_time"]), ChildLedger.from_json(data["ledger"])
        )

    def child(self, sequence: int) -> tuple[int, ResumeAt | None]:
        """A rerun child's redrive count and where it resumes: a STANDARD child that ran before is the
        same execution redriven (from its failed state); an EXPRESS one is a new execution, from the
        start; one that never ran starts for the first time."""
        if self.identity.execution_type == "EXPRESS" or sequence not in self.ledger.unsuccessful:
            return 0, None
        return self.ledger.redrive_count(sequence) + 1, self.ledger.resume_of(sequence)


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
    events: EventCounter | None = None,
) -> Any:
    """Run one distributed Map state and return its raw result (before ResultSelector/ResultPath).

    Without a ResultWriter destination: the list of child outputs in item order (a failed child
    within tolerance appears as its full execution record, as AWS documents). With one:
    {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}. Past the tolerated failures it raises
    States.ExceedToleratedFailureThreshold, after writing the results (PENDING for unstarted items).

    The MapRun is appended to `services.map_runs` and passed to `services.on_map_run` as it starts
    and ends; `on_progress` (default `services.on_map_run_progress`) is called with it as children
    end. `select_item(value, item_context)` replaces the state's ItemSelector (a JSONata
    ItemSelector). `events` gets the map run's history events. A redrive of this state
    (`services.map_run_redrives`) resumes the map run it names: only the children that did not
    succeed run again. A cancellation aborts the run: its running children end ABORTED, the results
    so far are written, and ExecutionAborted is raised.
    """
    settings = MapSettings.resolve(state, effective_input, context)
    redrive: MapRunRedrive | None = services.map_run_redrives.pop(state_name, None)
    identity = redrive.identity if redrive is not None else map_run_identity(state_name, state, context)
    ledger = None
    if redrive is not None:
        ledger = redrive.ledger
    elif services.keep_child_records:
        ledger = ChildLedger(time.time(), keep_outputs="Resource" not in (state.get("ResultWriter") or {}))
    execution_arn = (context.get("Execution") or {}).get("Id") or ""
    run = MapRun.start(
        identity, state_name, settings, execution_arn=execution_arn, redrive=redrive, ledger=ledger
    )
    services.map_runs.append(run)
    if events is not None:
        if redrive is None:
            events.emit("MapRunStarted", lambda: map_run_started(run.map_run_arn))
        else:
            events.emit("MapRunRedriven", lambda: map_run_redriven(run.map_run_arn, run.redrive_count))
    observe = services.on_map_run
    if observe is not None:
        observe(run)
    progress = on_progress or services.on_map_run_progress
    try:
        result = _run(
            run,
            state_name,
            state,
            effective_input,
            context,
            services,
            run_child,
            settings,
            redrive,
            select_item,
            result_file_max_bytes,
            progress,
        )
    except ExecutionAborted:
        _ended(run, "ABORTED", events, "MapRunAborted", None, observe)
        raise
    except StatesError as exc:
        failed = partial(error_details, "mapRunFailedEventDetails", exc.error, exc.cause)
        _ended(run, "FAILED", events, "MapRunFailed", failed, observe)
        raise
    except BaseException:
        _ended(run, "FAILED", None, "", None, observe)
        raise
    _ended(run, "SUCCEEDED", events, "MapRunSucceeded", None, observe)
    return result


def _ended(
    run: MapRun,
    status: str,
    events: EventCounter | None,
    event_type: str,
    details: Callable[[], dict[str, Any]] | None,
    observe: Callable[[MapRun], None] | None,
) -> None:
    run.ended(status)
    if events is not None:
        events.emit(event_type, details)
    if observe is not None:
        observe(run)


def _run(
    run: MapRun,
    state_name: str,
    state: dict[str, Any],
    effective_input: Any,
    context: dict[str, Any],
    services: Services,
    run_child: RunChild,
    settings: MapSettings,
    redrive: MapRunRedrive | None,
    select_item: SelectItem | None,
    result_file_max_bytes: int,
    progress: Callable[[MapRun], None] | None,
) -> Any:
    identity = run.identity
    assert identity is not None
    pool = pool_size(settings.max_concurrency, services)
    results = MapResults.open(
        state_name,
        state,
        effective_input,
        context,
        services.s3,
        identity,
        result_file_max_bytes,
        redriven=redrive.ledger if redrive is not None else None,
    )
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    direct = DirectLambdaTask.for_processor(processor, services)
    batches = _batches(state_name, state, effective_input, context, services, settings, direct, select_item)
    role_arn = (context.get("Execution") or {}).get("RoleArn")
    rerun = redrive.child if redrive is not None else None
    children = start_children(direct, services, identity, pool, run_child, role_arn, rerun)
    loop = _MapRunLoop(run, settings, results, children, progress, services.cancellation)
    exceeded = loop.run(batches, pool, redrive.ledger.to_rerun if redrive is not None else None)
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
        cancellation: Cancellation | None,
    ) -> None:
        self.run_record = run
        self.settings = settings
        self.results = results
        self.children = children
        self.progress = progress
        self.cancellation = cancellation
        self.exceeded = False

    def run(self, batches: Iterator[Batch], pool: int, to_rerun: Callable[[int], bool] | None) -> bool:
        """Run every child (on a redrive, those `to_rerun` names); True when the tolerated failures
        were exceeded."""
        run, children, cancellation = self.run_record, self.children, self.cancellation
        written = self.results.writer is not None
        try:
            for batch in batches:
                run.read(batch)
                if to_rerun is not None and not to_rerun(batch.sequence):
                    run.kept(batch, written)
                    continue
                while len(children) >= pool:
                    self._collect()
                if self.exceeded:
                    self._not_started(batch, batches)
                    break
                if cancellation is not None:
                    cancellation.check()
                run.started(batch)
                children.start(batch)
            run.all_read()
            while len(children):
                self._collect()
            self.exceeded = self.exceeded or run.tolerance_exceeded(self.settings)
        except ExecutionAborted:
            self._abort()
            raise
        except BaseException:
            children.close(cancel=True)
            self.results.close()
            raise
        children.close(cancel=False)
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

    def _abort(self) -> None:
        """StopExecution: the running children are abandoned and end ABORTED; what finished is
        written as usual (aborted children in FAILED_n, as AWS files them), so a redrive keeps the
        children that succeeded. Items not read yet are not read: the total counts those read."""
        for outcome in self.children.abort():
            self._record(outcome)
        self.results.write_what_is_done()
