"""Running a map run's children: how many at once, on which threads, and when failures are too many.

Children run on a bounded thread pool (`ThreadedChildren`): at most MaxConcurrency at once, and at
most a few per local worker process whatever MaxConcurrency says, so a million items never mean a
million threads or futures. The one-Task children of a worker-served function run instead from
the map's own thread through one InvocationDispatcher (`DispatchedChildren`): no thread per child,
no hand-offs between threads.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any, Protocol

from burstmap.local.core.context import Cancellation, RealClock, Services
from burstmap.local.core.errors import StatesError
from burstmap.local.core.protocols import InvocationDispatcher, RunChild, dispatcher_for
from burstmap.local.dmap.child import Batch, ChildOutcome, MapRunIdentity, child_context
from burstmap.local.dmap.direct_task import DirectLambdaTask

THREADS_PER_WORKER = 2
"""Children in flight per local worker process when MaxConcurrency is 0 or larger: enough to keep
every worker busy while another child's result is being recorded, and no more."""

Record = Callable[[ChildOutcome], None]
Rerun = Callable[[int], tuple[int, Any]]
"""On a redrive: a child's sequence -> (its redrive count, where it resumes or None)."""


class Children(Protocol):
    """The children of a map run that are running: started one by one, collected as they end."""

    def __len__(self) -> int: ...

    def start(self, batch: Batch) -> None: ...

    def collect(self, record: Record) -> None:
        """Wait for at least one running child to finish and record every finished one."""
        ...

    def close(self, cancel: bool) -> None: ...

    def abort(self) -> list[ChildOutcome]:
        """Abandon the running children (the map run is aborted): each one's outcome, ABORTED."""
        ...


def pool_size(max_concurrency: int, services: Services) -> int:
    """MaxConcurrency, capped by what the machine usefully runs (0 means AWS's maximum: the cap)."""
    workers = services.max_workers or os.cpu_count() or 1
    cap = max(1, THREADS_PER_WORKER * workers)
    return cap if max_concurrency == 0 else min(max_concurrency, cap)


def tolerance_exceeded(
    failed: int, total: int, total_known: bool, count: int | None, percentage: float | None
) -> bool:
    """Past the threshold: more failed items than ToleratedFailureCount, or a larger share than
    ToleratedFailurePercentage of all items (decided once the total is known). With neither field,
    one failed item is past it."""
    if failed == 0:
        return False
    if count is None and percentage is None:
        return True
    if count is not None and failed > count:
        return True
    if percentage is not None and total_known:
        return failed * 100 > percentage * total
    return False


def start_children(
    direct: DirectLambdaTask | None,
    services: Services,
    identity: MapRunIdentity,
    pool: int,
    run_child: RunChild,
    role_arn: str | None,
    rerun: Rerun | None = None,
) -> Children:
    """The dispatcher for a worker-served one-Task child, else a thread pool."""
    cancellation = services.cancellation
    if direct is not None:
        dispatcher = dispatcher_for(services.runtime, direct.function)
        if dispatcher is not None:
            return DispatchedChildren(direct, dispatcher, identity, cancellation, rerun)
    runner = _runner(direct, identity, run_child, role_arn, rerun)
    return ThreadedChildren(runner, pool, identity, cancellation, rerun)


def _aborted(batch: Batch, identity: MapRunIdentity, start: datetime, redrive_count: int) -> ChildOutcome:
    outcome = ChildOutcome(batch, identity, start, datetime.now(UTC), aborted=True)
    outcome.redrive_count = redrive_count
    return outcome


def _asl_error(exc: Exception) -> StatesError | None:
    """An ASL error raised by a child execution: a StatesError or anything carrying an `error` name."""
    if isinstance(exc, StatesError):
        return exc
    if isinstance(getattr(exc, "error", None), str):
        return StatesError(exc.error, getattr(exc, "cause", None))  # type: ignore[attr-defined]
    return None


def _runner(
    direct: DirectLambdaTask | None,
    identity: MapRunIdentity,
    run_child: RunChild,
    role_arn: str | None,
    rerun: Rerun | None,
) -> Callable[[Batch], ChildOutcome]:
    """One child on a pool thread: the direct Task, or the item processor run by the interpreter."""

    def run_one(batch: Batch) -> ChildOutcome:
        start = datetime.now(UTC)
        outcome = ChildOutcome(batch, identity, start, start)
        resume = None
        if rerun is not None:
            outcome.redrive_count, resume = rerun(batch.sequence)
        try:
            if direct is not None:
                outcome.output = direct(batch)
            elif resume is not None:
                outcome.output = run_child(batch.child_input, child_context(outcome, role_arn), resume)
            else:
                outcome.output = run_child(batch.child_input, child_context(outcome, role_arn))
        except Exception as exc:
            error = _asl_error(exc)
            if error is None:
                raise
            outcome.failed, outcome.error, outcome.cause = True, error.error, error.cause
            outcome.resume = getattr(exc, "unsuccessful", None)
        outcome.stop = datetime.now(UTC)
        return outcome

    return run_one


class ThreadedChildren:
    """Children run on a thread pool, one thread each while it runs (any ItemProcessor)."""

    def __init__(
        self,
        run_one: Callable[[Batch], ChildOutcome],
        size: int,
        identity: MapRunIdentity,
        cancellation: Cancellation | None = None,
        rerun: Rerun | None = None,
    ) -> None:
        self.run_one = run_one
        self.identity = identity
        self.cancellation = cancellation
        self.rerun = rerun
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"map-{identity.label}")
        self.in_flight: dict[Future[ChildOutcome], tuple[Batch, datetime]] = {}
        self.finished: SimpleQueue[Future[ChildOutcome]] = SimpleQueue()  # in_flight's, as they finish

    def __len__(self) -> int:
        return len(self.in_flight)

    def start(self, batch: Batch) -> None:
        future = self.executor.submit(self.run_one, batch)
        self.in_flight[future] = (batch, datetime.now(UTC))
        future.add_done_callback(self.finished.put)

    def collect(self, record: Record) -> None:
        future = self._next_finished()
        while True:
            self.in_flight.pop(future)
            record(future.result())
            try:
                future = self.finished.get_nowait()
            except Empty:
                break

    def _next_finished(self) -> Future[ChildOutcome]:
        """The next finished child; with a cancellation, looked at every POLL_SECONDS meanwhile."""
        cancellation = self.cancellation
        if cancellation is None:
            return self.finished.get()
        while True:
            cancellation.check()
            try:
                return self.finished.get(timeout=cancellation.POLL_SECONDS)
            except Empty:
                continue

    def close(self, cancel: bool) -> None:
        self.executor.shutdown(wait=True, cancel_futures=cancel)

    def abort(self) -> list[ChildOutcome]:
        """Children still running are left to finish on their threads, unrecorded."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        rerun = self.rerun
        outcomes = []
        for future, (batch, start) in self.in_flight.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes.append(future.result())  # it finished before the abort
            else:
                count = rerun(batch.sequence)[0] if rerun is not None else 0
                outcomes.append(_aborted(batch, self.identity, start, count))
        self.in_flight.clear()
        return outcomes


@dataclass
class _DispatchedChild:
    outcome: ChildOutcome
    payload: bytes
    attempts: list[int]


class DispatchedChildren:
    """The children of a map whose processor is a `DirectLambdaTask` on a worker-served function,
    run from the map's own thread through one InvocationDispatcher. Each child goes through the same
    steps as `DirectLambdaTask.__call__` (payload, counters, retries, output check); a child waiting
    for a Retry backoff sits in a heap of ready-at times, so it holds up no other child. With an
    injected clock other than the real one (a FakeClock in tests), the backoff goes through
    `services.retry_wait` as in the thread path."""

    def __init__(
        self,
        direct: DirectLambdaTask,
        dispatcher: InvocationDispatcher,
        identity: MapRunIdentity,
        cancellation: Cancellation | None = None,
        rerun: Rerun | None = None,
    ) -> None:
        self.direct = direct
        self.dispatcher = dispatcher
        self.identity = identity
        self.cancellation = cancellation
        self.rerun = rerun
        self.in_flight: dict[int, _DispatchedChild] = {}  # by sequence, until finished
        services = direct.services
        self.real_time = type(services.clock) is RealClock and (
            getattr(type(services), "retry_wait", None) is Services.retry_wait
        )
        self.running = 0
        self.waiting: list[tuple[float, int, _DispatchedChild]] = []  # (ready at, tie-break, child)
        self.tie = 0
        self.done: list[ChildOutcome] = []

    def __len__(self) -> int:
        return self.running

    def start(self, batch: Batch) -> None:
        start = datetime.now(UTC)
        outcome = ChildOutcome(batch, self.identity, start, start)
        if self.rerun is not None:
            outcome.redrive_count = self.rerun(batch.sequence)[0]
        child = _DispatchedChild(outcome, self.direct.entered(batch), self.direct.retry.new_attempts())
        self.running += 1
        self.in_flight[batch.sequence] = child
        self._attempt(child)

    def _attempt(self, child: _DispatchedChild) -> None:
        too_large = self.direct.input_error(child.payload)
        if too_large is not None:
            self._attempt_failed(child, too_large)
            return
        self.direct.services.stats.add("invocations")
        try:
            self.dispatcher.submit(child.payload, child)
        except StatesError as exc:
            self.direct.refused(exc)
            self._attempt_failed(child, exc)

    def _attempt_failed(self, child: _DispatchedChild, exc: StatesError) -> None:
        services = self.direct.services
        delay = self.direct.retry.next_delay(exc.error, child.attempts, services)
        if delay is None:
            self._finish(child, exc)
            return
        ready_at = 0.0
        if self.real_time:
            ready_at = time.monotonic() + max(0.0, delay * services.retry_time_scale)
        else:
            services.retry_wait(delay)
        self.tie += 1
        heapq.heappush(self.waiting, (ready_at, self.tie, child))

    def _answered(self, child: _DispatchedChild, result: Any) -> None:
        if isinstance(result, StatesError):  # refused by the service (a payload that is not JSON)
            self.direct.refused(result)
            self._attempt_failed(child, result)
            return
        try:
            output = self.direct.answered(result)
        except StatesError as exc:
            self._attempt_failed(child, exc)
            return
        try:
            child.outcome.output = self.direct.checked(output)
        except StatesError as exc:
            self._finish(child, exc)
            return
        self._finish(child, None)

    def _finish(self, child: _DispatchedChild, exc: StatesError | None) -> None:
        outcome = child.outcome
        if exc is not None:
            outcome.failed, outcome.error, outcome.cause = True, exc.error, exc.cause
        outcome.stop = datetime.now(UTC)
        self.in_flight.pop(outcome.batch.sequence, None)
        self.done.append(outcome)

    def collect(self, record: Record) -> None:
        cancellation = self.cancellation
        while not self.done:
            if cancellation is not None:
                cancellation.check()
            now = time.monotonic()
            while self.waiting and self.waiting[0][0] <= now:
                self._attempt(heapq.heappop(self.waiting)[2])
            if self.done:
                break
            timeout = max(0.0, self.waiting[0][0] - now) if self.waiting else None
            if cancellation is not None:  # look at the cancellation while waiting
                timeout = (
                    cancellation.POLL_SECONDS if timeout is None else min(timeout, cancellation.POLL_SECONDS)
                )
            if not self.dispatcher.pending:
                if timeout is not None:
                    threading.Event().wait(timeout)
                continue
            for child, result in self.dispatcher.wait(timeout):
                self._answered(child, result)
        done, self.done = self.done, []
        for outcome in done:
            self.running -= 1
            record(outcome)

    def close(self, cancel: bool) -> None:
        if cancel:
            self.dispatcher.abandon()

    def abort(self) -> list[ChildOutcome]:
        """Pending invocations are given up and the workers running them stopped."""
        self.dispatcher.abandon()
        aborted = [
            _aborted(child.outcome.batch, self.identity, child.outcome.start, child.outcome.redrive_count)
            for child in self.in_flight.values()
        ]
        finished, self.done = self.done, []  # answered but not yet collected: they did finish
        self.in_flight.clear()
        self.running = 0
        return finished + aborted
