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
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT

    def retry_wait(self, seconds: float) -> None:
        """A Retry backoff, scaled by retry_time_scale (0: no wait at all)."""
        scaled = seconds * self.retry_time_scale
        if scaled > 0:
            self.clock.sleep(scaled)


class EventCounter:
    """History event ids of one execution, approximating AWS's numbering (ExecutionStarted = 1).

    Only the ids of StateEntered events are visible (they appear in States.Runtime causes), so each
    state kind adds what its AWS history adds: Entered + Exited for most states, plus Scheduled,
    Started and Succeeded/Failed per Task attempt.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(2)
        self._lock = threading.Lock()

    def next(self, count: int = 1) -> int:
        """Take `count` ids and return the first."""
        with self._lock:
            first = next(self._ids)
            for _ in range(count - 1):
                next(self._ids)
            return first


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
            "RedriveCount": 0,
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
    """How an execution ended: SUCCEEDED with an output, or FAILED with an error and a cause."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    map_runs: list[MapRunSummary] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"
