"""Warm execution environments: the worker processes of one function (lambda_worker.py, started by path),
how many run at once, how invocations queue on them, and what a crash, a timeout or a slow init becomes.

A function has up to ``limit`` workers, started on demand; each imports the handler once and serves
invocations one at a time, in the order sent. An invocation may wait in a worker's request pipe behind the
one it runs (``QUEUE_DEPTH``), so the worker starts the next as soon as it answers the last. A worker that
crashes or times out is killed and replaced; the invocations queued behind it never started, and go to
another worker.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from burstmap.local.services import lambda_worker
from burstmap.local.services.lambda_errors import exit_error_payload, invocation_of_answer, timed_out_payload
from burstmap.local.services.lambda_function import FunctionSpec, Invocation

INIT_TIMEOUT_SECONDS = 10.0
"""Lambda gives the init phase (importing the handler) 10 s, apart from the function timeout."""
QUEUE_DEPTH = 2
"""Invocations a worker holds at once (the one it runs and one queued): the worker then never
waits for the parent's threads between two invocations. New workers are started (up to the
limit) before any invocation is queued behind another."""

WORKER_SCRIPT = Path(lambda_worker.__file__).resolve()

Count = Callable[[str], None]
"""Adds one to the runtime counter of that name (``crashes``, ``timeouts``, ``workers_started``)."""


def encode_request(timeout_seconds: float, request_id: str, invoked_arn: str, payload: bytes) -> bytes:
    """One invocation as a worker reads it from its request pipe (lambda_worker.py's wire format)."""
    arn_bytes = invoked_arn.encode("utf-8")
    header = lambda_worker.HEADER.pack(timeout_seconds * 1000, request_id.encode("ascii"), len(arn_bytes))
    return header + arn_bytes + payload


class Crashed(Exception):
    """The worker exited or died (its pipe closed) before answering."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode


class NotStarted(Exception):
    """The worker an invocation was queued on failed before reaching it: run it on another one."""


class InitTimedOut(Exception):
    """A new worker did not finish importing its handler in time."""


class TimedOut(Exception):
    """The worker did not answer within the function's timeout."""


class Worker:
    """One child process (an execution environment) and the two pipe ends the parent holds.

    The invoking threads read the answers in the order the requests were sent (``sent`` numbers the
    requests, ``turn`` is the one whose answer is read next)."""

    def __init__(
        self, process: subprocess.Popen[bytes], requests: int, responses: int, lock: threading.Lock
    ) -> None:
        self.process = process
        self.requests = requests  # write end: invocations go out
        self.responses = responses  # read end: ready, results and errors come back
        self.ready = False
        self.inflight = 0  # invocations sent or being sent, not yet answered (guarded by the pool's cond)
        self.sent = 0  # guarded by send_lock
        self.turn = 0  # guarded by the pool's cond
        self.broken = False  # crashed, timed out or killed: queued invocations go to another worker
        self.turn_changed = threading.Condition(lock)  # the pool's lock: waiters for this worker only
        self.send_lock = threading.Lock()
        self._closed = False
        self._poller = select.poll()
        self._poller.register(responses, select.POLLIN | select.POLLHUP | select.POLLERR)

    def send(self, data: bytes) -> None:
        lambda_worker.send_message(self.requests, data)

    def wait_readable(self, seconds: float) -> bool:
        """True when a message (or EOF) is waiting; False after ``seconds``."""
        return bool(self._poller.poll(max(0, int(seconds * 1000))))

    def receive(self) -> bytes:
        return lambda_worker.recv_message(self.responses)

    def kill(self) -> int | None:
        """Stop the process for good and return its exit code."""
        if self.process.poll() is None:
            self.process.kill()
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill that does not take
            code = None
        self.close_pipes()
        return code

    def close_pipes(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self.requests, self.responses):
                with suppress(OSError):
                    os.close(fd)

    def exit_code_after_eof(self) -> int | None:
        """The exit status of a worker whose pipe closed (it is exiting or has exited)."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return self.kill()
        self.close_pipes()
        return code


class FunctionPool:
    """The warm workers of one function: at most ``limit`` processes, started when first needed."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], limit: int, count: Count) -> None:
        self.spec = spec
        self.env = env
        self.limit = limit
        self.count = count
        self.live = 0
        self.closed = False
        self.all: list[Worker] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # a worker's queue has room, or the pool closed

    # ------------------------------------------------------------------------------- queueing

    def acquire(self, block: bool = True) -> Worker | None:
        """A worker for one invocation: an idle one, else a new one (up to ``limit``), else the
        least loaded with room in its queue; waits while every worker's queue is full (or returns
        None at once, without ``block``)."""
        with self.cond:
            while True:
                if self.closed:
                    raise RuntimeError("the LambdaRuntime is closed")
                best = min(self.all, key=_inflight, default=None)
                if best is not None and best.inflight == 0:
                    break
                if self.live < self.limit:
                    self.live += 1
                    best = None
                    break
                if best is not None and best.inflight < QUEUE_DEPTH:
                    break
                if not block:
                    return None
                self.cond.wait()
            if best is not None:
                best.inflight += 1
                return best
        try:
            worker = self._start()
        except BaseException:
            with self.cond:
                self.live -= 1
                self.cond.notify_all()
            raise
        return worker

    def wait_turn(self, worker: Worker, sequence: int) -> None:
        """Block until the answers before ``sequence`` are read; NotStarted if the worker broke."""
        with self.cond:
            while worker.turn != sequence and not worker.broken:
                worker.turn_changed.wait()
            if worker.broken:
                worker.inflight -= 1
                self.cond.notify()
                raise NotStarted()

    def not_started(self, worker: Worker) -> None:
        """An invocation queued on a broken worker leaves it (it will be sent to another one)."""
        with self.cond:
            worker.inflight -= 1
            self.cond.notify()

    def answered(self, worker: Worker) -> None:
        """The invocation whose turn it was is answered and the worker is healthy."""
        with self.cond:
            worker.turn += 1
            worker.inflight -= 1
            stop = self.closed and worker.inflight == 0
            worker.turn_changed.notify_all()
            self.cond.notify()
        if stop:  # closed while it ran: close() left it to its invoking thread
            worker.kill()

    def discard(self, worker: Worker) -> None:
        """The worker crashed, timed out or was killed: stop it; invocations queued on it move."""
        with self.cond:
            worker.inflight -= 1
            if not worker.broken:
                worker.broken = True
                if worker in self.all:
                    self.all.remove(worker)
                    self.live -= 1
            worker.turn_changed.notify_all()
            self.cond.notify_all()
        worker.kill()

    # ------------------------------------------------------------------------------- invoking

    def invoke(self, request: bytes, request_id: str) -> Invocation:
        """Send one encoded invocation to a worker and block until it is answered, crashes or times out
        (its timeout counts from when the worker has finished the invocations queued before it)."""
        timeout = float(self.spec.timeout_seconds)
        while True:
            worker = self.acquire()
            assert worker is not None
            with worker.send_lock:
                sequence = worker.sent
                worker.sent += 1
                try:
                    worker.send(request)
                    send_failed = False
                except OSError:  # the worker died: its pipe says how, in turn
                    send_failed = True
            try:
                self.wait_turn(worker, sequence)
            except NotStarted:
                continue  # queued behind an invocation that crashed or timed out: never ran
            try:
                message = self._answer(worker, timeout, send_failed)
            except Crashed as crash:
                self.discard(worker)
                self.count("crashes")
                return Invocation(exit_error_payload(request_id, crash.returncode), "Unhandled", request_id)
            except InitTimedOut:
                self.discard(worker)
                self.count("timeouts")
                return Invocation(
                    timed_out_payload(request_id, INIT_TIMEOUT_SECONDS), "Unhandled", request_id
                )
            except TimedOut:
                self.discard(worker)
                self.count("timeouts")
                return Invocation(timed_out_payload(request_id, timeout), "Unhandled", request_id)
            except BaseException:
                self.discard(worker)
                raise
            self.answered(worker)
            return invocation_of_answer(message, request_id)

    def _answer(self, worker: Worker, timeout: float, send_failed: bool) -> bytes:
        """The worker's answer to the invocation whose turn it is."""
        if send_failed:
            raise Crashed(worker.exit_code_after_eof())
        self._wait_ready(worker)
        if not worker.wait_readable(timeout):
            raise TimedOut()
        try:
            return worker.receive()
        except (EOFError, OSError) as error:
            raise Crashed(worker.exit_code_after_eof()) from error

    def _wait_ready(self, worker: Worker) -> None:
        """The first invocation of a new worker waits for its init phase (the handler import)."""
        if worker.ready:
            return
        if not worker.wait_readable(max(INIT_TIMEOUT_SECONDS, float(self.spec.timeout_seconds))):
            raise InitTimedOut()
        try:
            message = worker.receive()
        except (EOFError, OSError) as error:
            raise Crashed(worker.exit_code_after_eof()) from error
        worker.ready = True
        # An init failure is remembered by the worker, which answers each invocation with it.
        del message

    # ------------------------------------------------------------------------------- processes

    def _start(self) -> Worker:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        config = {"handler": self.spec.handler, "code_paths": [str(p) for p in self.spec.code_paths]}
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER_SCRIPT),
                    str(request_read),
                    str(response_write),
                    json.dumps(config),
                ],
                pass_fds=(request_read, response_write),
                env=self.env,
                cwd=str(self.spec.code_paths[0]) if self.spec.code_paths else None,
                stdin=subprocess.DEVNULL,
                stdout=sys.__stderr__.fileno() if sys.__stderr__ else None,  # function logs: stderr
            )
        except BaseException:
            for fd in (request_read, request_write, response_read, response_write):
                os.close(fd)
            raise
        os.close(request_read)
        os.close(response_write)
        worker = Worker(process, request_write, response_read, self.lock)
        worker.inflight = 1
        with self.cond:
            self.all.append(worker)
        self.count("workers_started")
        return worker

    def close(self) -> None:
        """Idle workers get EOF and exit; busy ones are killed (the invoking thread sees a crash and
        closes their pipes itself, so no descriptor is closed under a thread still polling it)."""
        with self.cond:
            self.closed = True
            idle = [worker for worker in self.all if worker.inflight == 0]
            busy = [worker for worker in self.all if worker.inflight > 0]
            self.all.clear()
            self.cond.notify_all()
        for worker in busy:
            with suppress(OSError):
                worker.process.kill()
        for worker in idle:
            worker.close_pipes()  # EOF: the worker's loop ends
        deadline = time.monotonic() + 2
        for worker in idle:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()


def _inflight(worker: Worker) -> int:
    return worker.inflight
