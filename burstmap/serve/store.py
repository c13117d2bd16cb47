"""The executions the server has started: status, input, output, history events and map runs.

An :class:`ExecutionRecord` is the ``ExecutionListener`` its backend reports to; every change happens
under the record's lock, so API calls read consistent snapshots while executions run on other threads.
With a state directory every record is written as one JSON file when it starts and when it ends
(atomically: a temporary file renamed), and read back when the server starts again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burstmap.serve.backend import (
    TERMINAL_STATUSES,
    ExecutionHandle,
    ExecutionOutcome,
    HistoryEvent,
    MapRunSnapshot,
)

log = logging.getLogger(__name__)

TERMINAL_EVENTS = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}
SCHEMA_VERSION = 1
SERVER_STOPPED_ERROR = "burstmap.ServerStopped"
SERVER_STOPPED_CAUSE = (
    "burstmap serve stopped while this execution was running; the local engine does not resume executions"
)


def to_json_text(value: Any) -> str:
    """An execution input or output as Step Functions returns it: compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class ExecutionRecord:
    """One execution: what DescribeExecution, ListExecutions, GetExecutionHistory and the map run
    operations read. Mutated only by its own methods, under its lock."""

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
    events: list[dict[str, Any]] = field(default_factory=list)
    map_runs: dict[str, MapRunSnapshot] = field(default_factory=dict)
    on_change: Any = field(default=None, repr=False, compare=False)
    handle: ExecutionHandle | None = field(default=None, repr=False, compare=False)
    end_reported: bool = field(default=False, repr=False, compare=False)
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
        with self._lock:
            self.redrive_count += 1
            self.redrive_date = when
            self.status, self.stop_date, self.end_reported = "RUNNING", None, False
            self.output_text = self.error = self.cause = None
            self.history_event(
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
        """StopExecution: ABORTED now (the backend winds down behind it); False if it had ended."""
        with self._lock:
            if self.status in TERMINAL_STATUSES:
                return False
            self._end("ABORTED", when, error=error, cause=cause)
            handle = self.handle
        if handle is not None:
            handle.stop()
        return True

    # ------------------------------------------------------------------------------ ExecutionListener

    def history_event(self, event: HistoryEvent) -> None:
        with self._lock:
            self._add_event(event.id, event.type, event.timestamp, event.previous_event_id, event.details)

    def _record_event(self, event_type: str, details: dict[str, Any] | None, timestamp: datetime) -> None:
        """An event of the execution itself (started, redriven, ended), numbered after every other."""
        with self._lock:
            last = max((event["id"] for event in self.events), default=0)
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
            return max((event["id"] for event in self.events), default=0) + 1

    def map_run_changed(self, run: MapRunSnapshot) -> None:
        with self._lock:
            self.map_runs[run.map_run_arn] = run

    def finished(self, outcome: ExecutionOutcome) -> None:
        with self._lock:
            for run in outcome.map_runs:
                self.map_runs[run.map_run_arn] = run
            if self.status not in TERMINAL_STATUSES:  # not stopped meanwhile
                output = None if outcome.status != "SUCCEEDED" else to_json_text(outcome.output)
                self._end(outcome.status, outcome.stop_date, output, outcome.error, outcome.cause)
            else:
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
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # ------------------------------------------------------------------------------ reading

    def wait(self, timeout: float | None = None) -> bool:
        """Until the backend has reported the end (StartSyncExecution, shutdown)."""
        with self._lock:
            return self._ended.wait_for(lambda: self.end_reported, timeout)

    def snapshot(self) -> dict[str, Any]:
        """Every field, consistent, as plain values (what the API renders and the state file holds)."""
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
                "events": [dict(event) for event in self.events],
                "map_runs": [
                    replace(
                        run, item_counts=dict(run.item_counts), execution_counts=dict(run.execution_counts)
                    )
                    for run in self.map_runs.values()
                ],
            }


class ExecutionStore:
    """Every execution of the server's life, by ARN, optionally kept in ``state_dir/executions``."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._records: dict[str, ExecutionRecord] = {}
        self._lock = threading.Lock()
        self._directory = Path(state_dir) / "executions" if state_dir is not None else None
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            for record in self._load():
                self._records[record.execution_arn] = record

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
        for record in self.all():
            run = record.snapshot()["map_runs"]
            for snapshot in run:
                if snapshot.map_run_arn == map_run_arn:
                    return record, snapshot
        return None

    # ------------------------------------------------------------------------------ the state directory

    def _path(self, execution_arn: str) -> Path:
        assert self._directory is not None
        return self._directory / f"{hashlib.sha256(execution_arn.encode()).hexdigest()[:32]}.json"

    def _save(self, record: ExecutionRecord) -> None:
        if self._directory is None:
            return
        data = _encode(record.snapshot())
        path = self._path(record.execution_arn)
        temporary = path.with_suffix(f".{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(temporary, path)

    def _load(self) -> Iterator[ExecutionRecord]:
        assert self._directory is not None
        for path in sorted(self._directory.glob("*.json")):
            try:
                fields = _decode(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable execution record %s: %s", path, exc)
                continue
            events = fields.pop("events")
            map_runs = fields.pop("map_runs")
            record = ExecutionRecord(**fields)
            record.events = events
            record.map_runs = {run.map_run_arn: run for run in map_runs}
            record.end_reported = True
            record.on_change = self._save
            if record.status == "RUNNING":  # the server stopped without stopping it (killed)
                record.stop(SERVER_STOPPED_ERROR, SERVER_STOPPED_CAUSE, datetime.now(UTC))
            yield record


_DATE_FIELDS = ("start_date", "stop_date", "redrive_date")


def _encode(snapshot: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in snapshot.items() if key not in ("events", "map_runs")}
    for key in _DATE_FIELDS:
        data[key] = _date_text(data[key])
    data["events"] = [{**event, "timestamp": _date_text(event["timestamp"])} for event in snapshot["events"]]
    data["map_runs"] = [
        {
            **vars(run),
            **{key: _date_text(getattr(run, key)) for key in ("start_date", "stop_date", "redrive_date")},
        }
        for run in snapshot["map_runs"]
    ]
    data["schema"] = SCHEMA_VERSION
    return data


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    if data.pop("schema", None) != SCHEMA_VERSION:
        raise ValueError(f"not a version {SCHEMA_VERSION} execution record")
    for key in _DATE_FIELDS:
        data[key] = _date_value(data[key])
    data["events"] = [{**event, "timestamp": _date_value(event["timestamp"])} for event in data["events"]]
    data["map_runs"] = [
        MapRunSnapshot(
            **{
                **run,
                **{key: _date_value(run[key]) for key in ("start_date", "stop_date", "redrive_date")},
            }
        )
        for run in data["map_runs"]
    ]
    return data


def _date_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _date_value(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
