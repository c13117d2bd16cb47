"""Many invocations of one worker-served function from a single thread: the distributed Map's common child
(one ``lambda:invoke`` Task) sends its batches through this instead of a thread per child."""

from __future__ import annotations

import math
import select
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import StatesError
from burstmap.local.services.lambda_errors import invocation_of_answer, timed_out_payload
from burstmap.local.services.lambda_function import FunctionSpec, Invocation
from burstmap.local.services.lambda_pool import INIT_TIMEOUT_SECONDS, FunctionPool, Worker, encode_request

Admit = Callable[[str], tuple[FunctionSpec, str]]
"""Resolves, counts and (at the injected rate) throttles one invocation; returns the spec and invoked ARN."""
Deliver = Callable[[Invocation], Invocation]
"""Turns a worker's answer into what the caller gets (the response limit) and counts function errors."""
Count = Callable[[str], None]


@dataclass
class _Queued:
    """One invocation of an InvocationDispatcher, sent or waiting for room on a worker."""

    token: Any
    request_id: str
    request: bytes
    sequence: int = -1
    send_failed: bool = False


class InvocationDispatcher:
    """Many invocations of one worker-served function from a single thread, without a thread per
    invocation: :meth:`submit` queues one (service errors such as throttling raise at once, as
    from :meth:`LambdaRuntime.invoke`), :meth:`wait` sends what the workers have room for, polls
    their pipes and returns the finished ones. Everything else is as in ``invoke``: the same
    counters, payloads, timeouts (counted from when the worker reaches the invocation), crashed
    or timed-out workers replaced and the invocations queued behind them sent again; the function's
    pool may be shared with threads calling ``invoke`` at the same time.

    Made by :meth:`LambdaRuntime.dispatcher`, which passes its own admission, delivery and counters."""

    RECHECK_SECONDS = 0.005
    """How often to look again at a worker whose answer a thread of ``invoke`` is reading first."""

    def __init__(
        self,
        function: str,
        spec: FunctionSpec,
        pool: FunctionPool,
        *,
        admit: Admit,
        deliver: Deliver,
        count: Count,
    ) -> None:
        self.function = function
        self.spec = spec
        self.pool = pool
        self.timeout = float(spec.timeout_seconds)
        self._admit = admit
        self._deliver = deliver
        self._count = count
        self._unsent: deque[_Queued] = deque()
        self._sent: dict[Worker, deque[_Queued]] = {}
        self._deadlines: dict[Worker, float] = {}  # the head invocation's, once its turn came
        self._done: list[tuple[Any, Invocation | StatesError]] = []

    @property
    def pending(self) -> int:
        return len(self._unsent) + sum(len(queue) for queue in self._sent.values())

    def submit(self, payload: bytes, token: Any) -> None:
        """Start one invocation; ``token`` comes back with its result from :meth:`wait`."""
        _, invoked_arn = self._admit(self.function)
        request_id = str(uuid.uuid4())
        self._unsent.append(
            _Queued(token, request_id, encode_request(self.timeout, request_id, invoked_arn, payload))
        )
        self._send()

    def _send(self) -> None:
        while self._unsent:
            worker = self.pool.acquire(block=False)
            if worker is None:
                return
            queued = self._unsent.popleft()
            with worker.send_lock:
                queued.sequence = worker.sent
                worker.sent += 1
                try:
                    worker.send(queued.request)
                except OSError:  # the worker died: its pipe says how, in turn
                    queued.send_failed = True
            self._sent.setdefault(worker, deque()).append(queued)
            if self.pool.memory is not None:
                self.pool.memory.busy()

    def wait(self, timeout: float | None = None) -> list[tuple[Any, Invocation | StatesError]]:
        """Finished invocations as (token, Invocation or the service error), waiting up to
        ``timeout`` seconds (None: until one finishes) when none has finished yet."""
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            self._send()
            now = time.monotonic()
            poller = select.poll()
            watched: dict[int, Worker] = {}
            wake = until
            for worker in list(self._sent):
                queue = self._sent[worker]
                if not queue:
                    del self._sent[worker]
                    self._deadlines.pop(worker, None)
                    continue
                if worker.broken:
                    self._requeue(worker)
                    continue
                head = queue[0]
                if worker.turn != head.sequence:  # a thread of invoke() reads this worker first
                    recheck = now + self.RECHECK_SECONDS
                    wake = recheck if wake is None else min(wake, recheck)
                    continue
                if head.send_failed:
                    self._crashed(worker, worker.exit_code_after_eof())
                    continue
                deadline = self._deadlines.get(worker)
                if deadline is None:
                    limit = self.timeout if worker.ready else max(INIT_TIMEOUT_SECONDS, self.timeout)
                    deadline = self._deadlines[worker] = now + limit
                if now >= deadline:
                    self._timed_out(worker)
                    continue
                wake = deadline if wake is None else min(wake, deadline)
                watched[worker.responses] = worker
                poller.register(worker.responses, select.POLLIN | select.POLLHUP | select.POLLERR)
            if self._done:
                done, self._done = self._done, []
                return done
            if self._unsent:  # no room on any worker now (threads of invoke() hold them): look again soon
                recheck = now + self.RECHECK_SECONDS
                wake = recheck if wake is None else min(wake, recheck)
            if wake is None and not watched:
                raise RuntimeError("InvocationDispatcher.wait: nothing is in flight")
            milliseconds = None if wake is None else max(0, math.ceil((wake - now) * 1000))
            for fd, _ in poller.poll(milliseconds):
                self._read(watched[fd])
            if not self._done and until is not None and time.monotonic() >= until:
                return []

    def _read(self, worker: Worker) -> None:
        try:
            message = worker.receive()
        except (EOFError, OSError):
            self._crashed(worker, worker.exit_code_after_eof())
            return
        if not worker.ready:  # the init phase is over: the invocation's own timeout starts now
            worker.ready = True
            self._deadlines[worker] = time.monotonic() + self.timeout
            self.pool.init_answered(message)
            return
        queued = self._sent[worker].popleft()
        self._deadlines.pop(worker, None)
        self.pool.answered(worker)
        try:
            result: Invocation | StatesError = self._deliver(invocation_of_answer(message, queued.request_id))
        except StatesError as error:
            result = error
        self._done.append((queued.token, result))

    def _failed_head(self, worker: Worker, payload: Callable[[str], bytes], counter: str) -> None:
        queued = self._sent[worker].popleft()
        self._deadlines.pop(worker, None)
        self.pool.discard(worker)
        self._count(counter)
        failure = Invocation(payload(queued.request_id), "Unhandled", queued.request_id)
        self._done.append((queued.token, self._deliver(failure)))
        self._requeue(worker)

    def _crashed(self, worker: Worker, returncode: int | None) -> None:
        self._failed_head(
            worker, lambda request_id: worker.failure_payload(request_id, returncode), "crashes"
        )

    def _timed_out(self, worker: Worker) -> None:
        seconds = self.timeout if worker.ready else INIT_TIMEOUT_SECONDS
        self._failed_head(worker, lambda request_id: timed_out_payload(request_id, seconds), "timeouts")

    def _requeue(self, worker: Worker) -> None:
        """Invocations queued on a broken worker never started: they go to another worker, first."""
        queue = self._sent.pop(worker, deque())
        self._deadlines.pop(worker, None)
        for queued in queue:
            self.pool.not_started(worker)
            queued.sequence, queued.send_failed = -1, False
        self._unsent.extendleft(reversed(queue))

    def abandon(self) -> None:
        """Stop for good (the caller failed): workers still holding invocations are stopped, so
        no answer is left for another caller to read."""
        self._unsent.clear()
        for worker, queue in list(self._sent.items()):
            for _ in range(len(queue) - 1):
                self.pool.not_started(worker)
            if queue:
                self.pool.discard(worker)
        self._sent.clear()
        self._deadlines.clear()
