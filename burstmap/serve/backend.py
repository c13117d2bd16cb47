"""What the server needs from an engine: start, observe, stop and redrive executions in the background.

The API layer (``stepfunctions.py``) speaks AWS's wire protocol and keeps the records; everything that
runs an execution sits behind :class:`ExecutionBackend`. A backend reports what happens through an
:class:`ExecutionListener` (history events, map runs with their counts, the end) and hands back an
:class:`ExecutionHandle` to stop or join the run. :class:`BackendCapabilities` says which of AWS's
behaviours a backend reproduces, so the API can refuse, by name, what it does not (``NotSupportedLocally``)
instead of pretending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class NotSupportedLocally(Exception):
    """An AWS behaviour this backend cannot reproduce; the message names it and what is missing."""


@dataclass(frozen=True)
class StateMachineSpec:
    """One state machine as the server serves it: what DescribeStateMachine returns and what runs."""

    arn: str
    name: str
    definition: dict[str, Any]
    type: str  # STANDARD | EXPRESS
    role_arn: str
    creation_date: datetime
    stack: str | None = None
    logical_id: str | None = None
    unsupported: str | None = None
    """Why the local engine cannot run it (a Node.js function, an unsupported ASL field), or None."""


@dataclass(frozen=True)
class ExecutionRequest:
    """One execution to run (or one redrive of it): names, the machine and the parsed input."""

    execution_arn: str
    name: str
    state_machine: StateMachineSpec
    input: Any
    start_date: datetime
    redrive_count: int = 0
    next_event_id: int = 2
    """The first history event id the backend may use: ExecutionStarted is 1; a redrive continues
    after the ExecutionRedriven event (ids then match the ``entered at the event id #N`` of causes)."""


@dataclass(frozen=True)
class HistoryEvent:
    """One GetExecutionHistory event as the backend numbered it."""

    id: int
    type: str  # TaskStateEntered, MapRunStarted, LambdaFunctionSucceeded, ...
    timestamp: datetime
    previous_event_id: int = 0
    details: dict[str, Any] | None = None
    """The event's ``*EventDetails`` member, e.g. ``{"stateEnteredEventDetails": {"name": "Start"}}``."""


@dataclass
class MapRunSnapshot:
    """One map run as DescribeMapRun shows it, at one moment."""

    map_run_arn: str
    execution_arn: str
    state_name: str
    status: str  # RUNNING | SUCCEEDED | FAILED | ABORTED
    start_date: datetime
    max_concurrency: int
    tolerated_failure_percentage: float
    tolerated_failure_count: int
    item_counts: dict[str, int]
    execution_counts: dict[str, int]
    stop_date: datetime | None = None
    redrive_count: int = 0
    redrive_date: datetime | None = None


@dataclass(frozen=True)
class ExecutionOutcome:
    """How one attempt of an execution ended."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    stop_date: datetime
    output: Any = None
    error: str | None = None
    cause: str | None = None
    map_runs: list[MapRunSnapshot] = field(default_factory=list)


class ExecutionListener(Protocol):
    """Where a backend reports a running execution; called from the backend's threads."""

    def history_event(self, event: HistoryEvent) -> None:
        """One history event between ExecutionStarted and the end (which the server records itself);
        events may arrive out of id order from concurrent branches and children."""
        ...

    def map_run_changed(self, run: MapRunSnapshot) -> None:
        """A map run started, or its counts or status changed."""
        ...

    def finished(self, outcome: ExecutionOutcome) -> None:
        """The attempt ended (exactly once per start or redrive)."""
        ...


class ExecutionHandle(Protocol):
    """A running attempt."""

    def stop(self) -> None:
        """Abort: start nothing more and end as soon as possible; returns at once."""
        ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait until ``finished`` has been reported; True when it has."""
        ...


@dataclass(frozen=True)
class BackendCapabilities:
    """Which AWS behaviours a backend does not reproduce: each field is None when it does, else a
    sentence saying what is missing (the API reports it, instead of pretending)."""

    state_history: str | None
    """History events per state, map run and Lambda task (not only the execution's start and end)."""
    live_map_runs: str | None
    """Map runs reported while they run, with their ARN and moving counts (not only at the end)."""
    stop_aborts_children: str | None
    """``stop`` aborts a map run's running children (they end ABORTED), as StopExecution does on AWS."""
    redrive: str | None
    """``redrive`` reruns only the failed, aborted and timed-out parts of an execution, as AWS does."""


class ExecutionBackend(Protocol):
    """Runs executions in the background, for the server's life (warm functions across executions)."""

    capabilities: BackendCapabilities

    def check_runnable(self, state_machine: StateMachineSpec) -> None:
        """Raise NotSupportedLocally when this state machine cannot run (checked when it is loaded)."""
        ...

    def start(self, request: ExecutionRequest, listener: ExecutionListener) -> ExecutionHandle:
        """Start one execution in the background."""
        ...

    def redrive(
        self, request: ExecutionRequest, previous: ExecutionOutcome, listener: ExecutionListener
    ) -> ExecutionHandle:
        """Rerun the unsuccessful parts of an ended execution (``request.redrive_count`` already
        counts this redrive); raises NotSupportedLocally when the backend cannot."""
        ...

    def close(self) -> None:
        """Release what the backend holds (worker processes); running executions are stopped first."""
        ...
