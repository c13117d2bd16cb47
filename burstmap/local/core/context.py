"""What one execution needs besides the definition: a clock, counters, services, event ids, context.

The clock is injected so that Wait states and Retry backoffs can be tested without sleeping:
`FakeClock` advances virtual time and records every wait; `RealClock` really sleeps.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from burstmap.local.core.errors import ExecutionAborted
from burstmap.local.core.limits import LOCAL_ACCOUNT as DEFAULT_ACCOUNT
from burstmap.local.core.limits import LOCAL_REGION as DEFAULT_REGION
from burstmap.local.core.protocols import LambdaService

DEFAULT_STATE_MACHINE_NAME = "LocalStateMachine"


class Clock(Protocol):
    """Time as the engine sees it."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...

    def call_with_timeout(self, function: Callable[[], Any], seconds: float) -> Any:
        """Run `function`; raise TimeoutError if it takes longer than `seconds`."""
        ...


class RealClock:
    """Wall-clock time; waits really sleep, timeouts are enforced on a helper thread."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            threading.Event().wait(seconds)

    def call_with_timeout(self, function: Callable[[], Any], seconds: float) -> Any:
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = function()
            except BaseException as exc:  # re-raised on the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="task-timeout", daemon=True)
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            raise TimeoutError(f"no result within {seconds} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


class FakeClock:
    """Virtual time for tests: `sleep` advances it at once and records the wait in `sleeps`.

    `call_with_timeout` runs the function inline and times out when the function advanced the
    virtual time (by sleeping on this clock) past the limit.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += timedelta(seconds=max(seconds, 0))

    def call_with_timeout(self, function: Callable[[], Any], seconds: float) -> Any:
        started = self.now()
        value = function()
        if (self.now() - started).total_seconds() > seconds:
            raise TimeoutError(f"no result within {seconds} s")
        return value


class Cancellation:
    """Stops a running execution (StopExecution): set once, from any thread. The engine checks it as
    each state begins and while a map run waits for its children; waits (Wait states, Retry backoffs)
    end at it. Where the engine notices, it raises ExecutionAborted."""

    POLL_SECONDS = 0.05
    """How often a map run waiting for its children looks at the cancellation."""

    def __init__(self) -> None:
        self._set = threading.Event()

    def cancel(self) -> None:
        self._set.set()

    @property
    def cancelled(self) -> bool:
        return self._set.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when cancelled (at once, if it was already)."""
        return self._set.wait(seconds) if seconds > 0 else self._set.is_set()

    def check(self) -> None:
        """Raise ExecutionAborted when cancelled."""
        if self._set.is_set():
            raise ExecutionAborted("the execution was stopped")


@dataclass
class Stats:
    """Thread-safe counters of one execution (children of distributed Maps included)."""

    invocations: int = 0
    retries: int = 0
    failures: int = 0
    throttles: int = 0
    state_transitions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        return {
            "invocations": self.invocations,
            "retries": self.retries,
            "failures": self.failures,
            "throttles": self.throttles,
            "state_transitions": self.state_transitions,
        }


@dataclass
class Services:
    """What the states need from the outside world (shared by an execution and its child executions)."""

    runtime: LambdaService | None
    """The Lambda service the Task state and the distributed Map invoke (None: no functions)."""
    s3: Any = None  # botocore S3 client
    clock: Clock = field(default_factory=RealClock)
    stats: Stats = field(default_factory=Stats)
    retry_time_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    max_workers: int | None = None
    map_runs: list[Any] = field(default_factory=list)
    on_map_run_progress: Callable[[Any], None] | None = None
    on_map_run: Callable[[Any], None] | None = None
    """Called with a MapRun when it starts (or is redriven) and when it ends; its counts move between."""
    keep_child_records: bool = False
    """Map runs keep a ChildLedger of their children (listing, describing and redriving them)."""
    cancellation: Cancellation | None = None
    map_run_redrives: dict[str, Any] = field(default_factory=dict)
    """State name -> the map run a redrive resumes there (taken by the first run of that state)."""
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT

    def retry_wait(self, seconds: float) -> None:
        """A Retry backoff, scaled by retry_time_scale (0: no wait at all)."""
        scaled = seconds * self.retry_time_scale
        if scaled > 0:
            self.sleep(scaled)

    def sleep(self, seconds: float) -> None:
        """A wait of the execution's (a Wait state, a backoff); a cancellation ends it early, raising
        ExecutionAborted."""
        cancellation = self.cancellation
        if cancellation is None:
            self.clock.sleep(seconds)
        elif type(self.clock) is RealClock:
            if cancellation.wait(seconds):
                raise ExecutionAborted("the execution was stopped")
        else:
            cancellation.check()
            self.clock.sleep(seconds)
            cancellation.check()


EventSink = Callable[[int, str, int, dict[str, Any] | None], None]
"""Receives one history event as it happens: (id, type, previous event id, details member)."""


class _EventIds:
    """The id sequence one execution's event counters share (Parallel branches, Map iterations)."""

    def __init__(self, first: int) -> None:
        self._ids = itertools.count(first)
        self._lock = threading.Lock()

    def take(self, count: int) -> int:
        with self._lock:
            first = next(self._ids)
            for _ in range(count - 1):
                next(self._ids)
            return first


class EventCounter:
    """History event ids of one execution, as AWS numbers them (ExecutionStarted = 1), and, when a
    sink is attached, the events themselves (core/history.py).

    Each state kind takes the ids its AWS history takes: Entered and Exited for most states, plus
    Scheduled, Started and Succeeded/Failed per Task attempt, the Map and Parallel states' own events.
    A Parallel branch or an inline Map iteration gets a `branch()`: the same ids and sink, its own
    previous event.
    """

    def __init__(self, first: int = 2, sink: EventSink | None = None, previous: int = 0) -> None:
        self._ids = _EventIds(first)
        self.sink = sink
        self.previous = previous
        """The last event of this flow: the next event's previousEventId."""

    @property
    def recording(self) -> bool:
        return self.sink is not None

    def next(self, count: int = 1) -> int:
        """Take `count` ids and return the first (no events are built)."""
        return self._ids.take(count)

    def emit(self, event_type: str, details: Callable[[], dict[str, Any] | None] | None = None) -> int:
        """Take the next id for an event of `event_type`; a sink receives it with `details()`."""
        event_id = self._ids.take(1)
        if self.sink is not None:
            self.sink(event_id, event_type, self.previous, details() if details is not None else None)
            self.previous = event_id
        return event_id

    def branch(self) -> EventCounter:
        """A counter for a Parallel branch or an inline Map iteration: shared ids, its own flow."""
        branch = EventCounter.__new__(EventCounter)
        branch._ids, branch.sink, branch.previous = self._ids, self.sink, self.previous
        return branch


def iso_timestamp(moment: datetime | None = None) -> str:
    """UTC timestamp with milliseconds, e.g. 2023-11-21T06:27:31.545Z, as the context object and the
    map run records have them (now when no moment is given)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def execution_context(
    *,
    execution_input: Any,
    start_time: datetime,
    region: str,
    account: str,
    state_machine_name: str,
    execution_name: str | None = None,
    role_arn: str | None = None,
    redrive_count: int = 0,
) -> dict[str, Any]:
    """The context object's Execution and StateMachine parts for a top-level execution."""
    name = execution_name or str(uuid.uuid4())
    machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
    return {
        "Execution": {
            "Id": f"arn:aws:states:{region}:{account}:execution:{state_machine_name}:{name}",
            "Input": execution_input,
            "StartTime": iso_timestamp(start_time),
            "Name": name,
            "RoleArn": role_arn or f"arn:aws:iam::{account}:role/{state_machine_name}-role",
            "RedriveCount": redrive_count,
        },
        "StateMachine": {"Id": machine_arn, "Name": state_machine_name},
    }


@dataclass
class MapRunSummary:
    """One distributed Map run's counts, as DescribeMapRun names them."""

    map_run_arn: str
    state_name: str
    status: str
    item_counts: dict[str, int]
    execution_counts: dict[str, int]


@dataclass
class ExecutionResult:
    """How an execution ended: SUCCEEDED with an output, FAILED (or TIMED_OUT) with an error and a
    cause, or ABORTED (stopped through its Cancellation)."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    map_runs: list[MapRunSummary] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    redrive_point: Any = None
    """Where a redrive resumes an unsuccessful execution (a redrive.RedrivePoint), or None."""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"
