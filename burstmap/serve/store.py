"""The executions the server has started: status, input, output, history events, map runs, redrive points.

An :class:`ExecutionRecord` is the ``ExecutionListener`` its backend reports to; every change happens
under the record's lock, so API calls read consistent views while executions run on other threads.
Running map runs are kept live (each read takes a fresh snapshot of their moving counts); an ended one is
kept as its last snapshot, with its children's records. With a state directory every record is written
as one JSON file when it starts and when it ends (record_files.py), and read back when the server starts
again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burstmap.local.core.history import HistoryEvent
from burstmap.serve.backend import (
    TERMINAL_STATUSES,
    ExecutionHandle,
    ExecutionOutcome,
    LiveMapRun,
    MapRunSnapshot,
)
from burstmap.serve.record_files import RecordFiles, to_json_text

TERMINAL_EVENTS = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}
SERVER_STOPPED_ERROR = "burstmap.ServerStopped"
SERVER_STOPPED_CAUSE = (
    "burstmap serve stopped while this execution was running; the local engine does not resume executions"
)
ABORT_EVENT_GRACE_SECONDS = 2.0
"""A stopped execution's ExecutionAborted event waits this long for the engine's last events (its map
runs' MapRunAborted) so that it comes last, as on AWS; later engine events are dropped."""

__all__ = ["ExecutionRecord", "ExecutionStore", "to_json_text"]


@dataclass
class ExecutionRecord:
    """One execution: what DescribeExecution, ListExecutions, GetExecutionHistory, the map run operations
    and RedriveExecution read. Mutated only by its own methods, under its lock."""

    execution_arn: str
    state_machine_arn: str
    name: str
    input_text: str
    start_date: datetime
    machine_type: str = "STANDARD"
    trace_header: str | None = None
    status: str = "RUNNING"
    stop_date: datetime | None = None
    output_text: str | None = None
    error: str | None = None
    cause: str | None = None
    redrive_count: int = 0
    redrive_date: datetime | None = None
    redrive_point: dict[str, Any] | None = None
    """Where a redrive resumes (the engine's RedrivePoint as JSON), once it ended unsuccessfully."""
    events: list[dict[str, Any]] = field(default_factory=list)
    map_runs: dict[str, MapRunSnapshot | LiveMapRun] = field(default_factory=dict)
    on_change: Any = field(default=None, repr=False, compare=False)
    handle: ExecutionHandle | None = field(default=None, repr=False, compare=False)
    end_reported: bool = field(default=False, repr=False, compare=False)
    events_closed: bool = field(default=False, repr=False, compare=False)
    """The terminal event is written: the backend's later events are dropped (their ids would clash)."""
    _pending_abort: tuple[dict[str, Any], datetime] | None = field(default=None, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _ended: threading.Condition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ended = threading.Condition(self._lock)

    # ------------------------------------------------------------------------------ lifecycle

    def started(self, role_arn: str) -> None:
        self._record_event(
            "ExecutionStarted",
            {
                "executionStartedEventDetails": {
                    "input": self.input_text,
                    "inputDetails": {"truncated": False},
                    "roleArn": role_arn,
                }
            },
            self.start_date,
        )

    def redriven(self, when: datetime) -> None:
        """RedriveExecution: RUNNING again, one more redrive, an ExecutionRedriven event."""
        with self._lock:
            self.redrive_count += 1
            self.redrive_date = when
            self.status, self.stop_date, self.end_reported = "RUNNING", None, False
            self.output_text = self.error = self.cause = None
            self.events_closed = False
            self._record_event(
                "ExecutionRedriven",
                {"executionRedrivenEventDetails": {"redriveCount": self.redrive_count}},
                when,
            )

    def attach(self, handle: ExecutionHandle) -> None:
        """The backend's handle of the running attempt; stopped at once if the record was stopped first."""
        with self._lock:
            self.handle = handle
            stopped = self.status in TERMINAL_STATUSES
        if stopped:
            handle.stop()

    def stop(self, error: str | None, cause: str | None, when: datetime) -> bool:
        """StopExecution: ABORTED now (the backend winds down behind it); False if it had ended. The
        ExecutionAborted event follows the engine's last events (or ABORT_EVENT_GRACE_SECONDS)."""
        with self._lock:
            if self.status in TERMINAL_STATUSES:
                return False
            self.status, self.stop_date = "ABORTED", when
            self.output_text, self.error, self.cause = None, error, cause
            details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
            self._pending_abort = ({"executionAbortedEventDetails": details}, when)
            handle = self.handle
            if handle is None or self.end_reported:
                self._write_pending_abort()
            else:
                timer = threading.Timer(ABORT_EVENT_GRACE_SECONDS, self._abort_event_due)
                timer.daemon = True
                timer.start()
            self._notify()
        if handle is not None:
            handle.stop()
        return True

    def settle_stop(self) -> None:
        """A just-stopped execution's history is about to be read: let the engine report its last events
        (up to ABORT_EVENT_GRACE_SECONDS), then write ExecutionAborted, so the history ends with it."""
        with self._lock:
            if self._pending_abort is None:
                return
            self._ended.wait_for(lambda: self.end_reported, ABORT_EVENT_GRACE_SECONDS)
            if self._pending_abort is not None:
                self._write_pending_abort()
                self._notify()

    def _abort_event_due(self) -> None:
        with self._lock:
            self._write_pending_abort()
            self._notify()

    def _write_pending_abort(self) -> None:
        if self._pending_abort is not None:
            details, when = self._pending_abort
            self._pending_abort = None
            self._record_event("ExecutionAborted", details, when)
            self.events_closed = True

    # ------------------------------------------------------------------------------ ExecutionListener

    def history_event(self, event: HistoryEvent) -> None:
        with self._lock:
            if not self.events_closed:
                self._add_event(event.id, event.type, event.timestamp, event.previous_event_id, event.details)

    def _record_event(self, event_type: str, details: dict[str, Any] | None, timestamp: datetime) -> None:
        """An event of the execution itself (started, redriven, ended), numbered after every other."""
        with self._lock:
            last = self.events[-1]["id"] if self.events else 0
            # AWS: ExecutionStarted and ExecutionAborted follow no event (previousEventId 0).
            previous = 0 if not self.events or event_type == "ExecutionAborted" else last
            self._add_event(last + 1, event_type, timestamp, previous, details)

    def _add_event(
        self,
        event_id: int,
        event_type: str,
        timestamp: datetime,
        previous: int,
        details: dict[str, Any] | None,
    ) -> None:
        event: dict[str, Any] = {"timestamp": timestamp, "type": event_type, "id": event_id}
        event["previousEventId"] = previous
        event.update(details or {})
        self.events.append(event)
        if len(self.events) > 1 and self.events[-2]["id"] > event_id:  # arrived out of order
            self.events.sort(key=lambda known: known["id"])

    @property
    def next_event_id(self) -> int:
        """The id the next event of a (re)started attempt gets."""
        with self._lock:
            return (self.events[-1]["id"] if self.events else 0) + 1

    def map_run_changed(self, run: LiveMapRun) -> None:
        with self._lock:
            self.map_runs[run.snapshot().map_run_arn] = run

    def finished(self, outcome: ExecutionOutcome) -> None:
        with self._lock:
            for run in outcome.map_runs:
                self.map_runs[run.map_run_arn] = run
            self.redrive_point = outcome.redrive_point
            if self.status not in TERMINAL_STATUSES:  # not stopped meanwhile
                output = None if outcome.status != "SUCCEEDED" else to_json_text(outcome.output)
                self._end(outcome.status, outcome.stop_date, output, outcome.error, outcome.cause)
            else:
                self._write_pending_abort()
                self._notify()
            self.end_reported = True
            self._ended.notify_all()

    def _end(
        self,
        status: str,
        when: datetime,
        output: str | None = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        self.status, self.stop_date = status, when
        self.output_text, self.error, self.cause = output, error, cause
        if status == "SUCCEEDED":
            details = {"output": output, "outputDetails": {"truncated": False}}
        else:
            details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
        key = TERMINAL_EVENTS[status][0].lower() + TERMINAL_EVENTS[status][1:] + "EventDetails"
        self._record_event(TERMINAL_EVENTS[status], {key: details}, when)
        self.events_closed = True
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # ------------------------------------------------------------------------------ reading

    def wait(self, timeout: float | None = None) -> bool:
        """Until the backend has reported the end (StartSyncExecution, shutdown)."""
        with self._lock:
            return self._ended.wait_for(lambda: self.end_reported, timeout)

    def describe(self) -> dict[str, Any]:
        """The execution's own fields, consistent (no events or map runs: DescribeExecution's cost)."""
        with self._lock:
            return {
                "execution_arn": self.execution_arn,
                "state_machine_arn": self.state_machine_arn,
                "name": self.name,
                "input_text": self.input_text,
                "start_date": self.start_date,
                "machine_type": self.machine_type,
                "trace_header": self.trace_header,
                "status": self.status,
                "stop_date": self.stop_date,
                "output_text": self.output_text,
                "error": self.error,
                "cause": self.cause,
                "redrive_count": self.redrive_count,
                "redrive_date": self.redrive_date,
                "redrive_point": self.redrive_point,
                "end_reported": self.end_reported,
            }

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self.events]

    def map_run_snapshots(self) -> list[MapRunSnapshot]:
        """Every map run now: the running ones' counts as they are at this call."""
        with self._lock:
            runs = list(self.map_runs.values())
        return [_copy(run if isinstance(run, MapRunSnapshot) else run.snapshot()) for run in runs]

    def map_run(self, map_run_arn: str) -> MapRunSnapshot | None:
        """One map run now, or None when this execution did not start it."""
        with self._lock:
            run = self.map_runs.get(map_run_arn)
        if run is None:
            return None
        return _copy(run if isinstance(run, MapRunSnapshot) else run.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """Every field, consistent, as plain values (what the state file holds)."""
        with self._lock:
            fields = {key: value for key, value in self.describe().items() if key != "end_reported"}
            return {**fields, "events": self.history(), "map_runs": self.map_run_snapshots()}


def _copy(run: MapRunSnapshot) -> MapRunSnapshot:
    return replace(run, item_counts=dict(run.item_counts), execution_counts=dict(run.execution_counts))


class ExecutionStore:
    """Every execution of the server's life, by ARN, optionally kept in ``state_dir/executions``."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._records: dict[str, ExecutionRecord] = {}
        self._lock = threading.Lock()
        self._files = RecordFiles(Path(state_dir) / "executions") if state_dir is not None else None
        if self._files is not None:
            for fields in self._files.load():
                record = self._restore(fields)
                self._records[record.execution_arn] = record

    def _restore(self, fields: dict[str, Any]) -> ExecutionRecord:
        events = fields.pop("events")
        map_runs = fields.pop("map_runs")
        record = ExecutionRecord(**fields)
        record.events = events
        record.map_runs = {run.map_run_arn: run for run in map_runs}
        record.end_reported = record.events_closed = record.status != "RUNNING"
        record.on_change = self._save
        if record.status == "RUNNING":  # the server stopped without stopping it (killed)
            record.stop(SERVER_STOPPED_ERROR, SERVER_STOPPED_CAUSE, datetime.now(UTC))
            record.end_reported = True
        return record

    def add(self, record: ExecutionRecord) -> ExecutionRecord:
        """Add a record unless one with its ARN exists; returns the one stored."""
        with self._lock:
            existing = self._records.get(record.execution_arn)
            if existing is not None:
                return existing
            self._records[record.execution_arn] = record
        record.on_change = self._save
        self._save(record)
        return record

    def get(self, execution_arn: str) -> ExecutionRecord | None:
        with self._lock:
            return self._records.get(execution_arn)

    def all(self) -> list[ExecutionRecord]:
        with self._lock:
            return list(self._records.values())

    def find_map_run(self, map_run_arn: str) -> tuple[ExecutionRecord, MapRunSnapshot] | None:
        """The execution that started a map run, and the map run now."""
        for record in self.all():
            run = record.map_run(map_run_arn)
            if run is not None:
                return record, run
        return None

    def _save(self, record: ExecutionRecord) -> None:
        if self._files is not None:
            self._files.save(record.execution_arn, record.snapshot())
