"""What the server needs from an engine: start, observe, stop and redrive executions in the background.

The API layer (``stepfunctions.py``) speaks AWS's wire protocol and keeps the records; what runs an
execution sits behind :class:`ExecutionBackend`. A backend reports what happens through an
:class:`ExecutionListener` (history events, map runs as they run, the end) and hands back an
:class:`ExecutionHandle` to stop or join the run. An execution that ended unsuccessfully carries its
``redrive_point`` (plain JSON), which a redrive hands back to the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from burstmap.local.core.history import HistoryEvent
from burstmap.local.dmap.child_ledger import ChildLedger

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


@dataclass
class MapRunSnapshot:
    """One map run as DescribeMapRun shows it, at one moment, with its children's records."""

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
    execution_type: str = "STANDARD"
    """Of its children: STANDARD children are listed and described; AWS records no EXPRESS ones."""
    children: ChildLedger | None = field(default=None, compare=False, repr=False)
    """Every child's status and dates, the unsuccessful ones in detail (None: not kept)."""


class LiveMapRun(Protocol):
    """A map run the backend is running: its current state on every read."""

    def snapshot(self) -> MapRunSnapshot: ...


@dataclass(frozen=True)
class ExecutionOutcome:
    """How one attempt of an execution ended."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    stop_date: datetime
    output: Any = None
    error: str | None = None
    cause: str | None = None
    map_runs: list[MapRunSnapshot] = field(default_factory=list)
    redrive_point: dict[str, Any] | None = None
    """Where a redrive resumes (the engine's RedrivePoint as JSON; its ``unsupported`` says why a
    redrive is refused), or None when it cannot be redriven."""


class ExecutionListener(Protocol):
    """Where a backend reports a running execution; called from the backend's threads."""

    def history_event(self, event: HistoryEvent) -> None:
        """One history event between ExecutionStarted and the end (which the server records itself);
        events may arrive out of id order from concurrent branches."""
        ...

    def map_run_changed(self, run: LiveMapRun) -> None:
        """A map run started, was redriven, or ended; between, its counts move on `run` itself."""
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


class ExecutionBackend(Protocol):
    """Runs executions in the background, for the server's life (warm functions across executions)."""

    def check_runnable(self, state_machine: StateMachineSpec) -> None:
        """Raise NotSupportedLocally when this state machine cannot run (checked when it is loaded)."""
        ...

    def start(self, request: ExecutionRequest, listener: ExecutionListener) -> ExecutionHandle:
        """Start one execution in the background."""
        ...

    def redrive(
        self, request: ExecutionRequest, previous: ExecutionOutcome, listener: ExecutionListener
    ) -> ExecutionHandle:
        """Resume an ended, unsuccessful execution at its ``previous.redrive_point``
        (``request.redrive_count`` already counts this redrive); raises NotSupportedLocally when it
        cannot."""
        ...

    def close(self) -> None:
        """Release what the backend holds (worker processes); running executions are stopped first."""
        ...
