"""Warm execution environments: the worker processes of one function (lambda_worker.py, started by path),
how many run at once, how invocations queue on them, and what a crash, a timeout or a slow init becomes.

A function has up to ``limit`` workers, started on demand; each imports the handler once and serves
invocations one at a time, in the order sent. An invocation may wait in a worker's request pipe behind the
one it runs (``QUEUE_DEPTH``), so the worker starts the next as soon as it answers the last. A worker that
crashes or times out is killed and replaced; the invocations queued behind it never started, and go to
another worker.

Each worker leads a process group of its own (process_groups.py): stopping it (a timeout, a crash, the
memory limit, the runtime's close) kills the group, so nothing a handler spawned outlives its worker.
A worker whose processes pass the function's MemorySize is killed by the runtime's MemoryMonitor, and
its invocation fails with ``Runtime.OutOfMemory``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from burstmap.local.services import lambda_worker
from burstmap.local.services.lambda_environment import Notice, WorkerLaunch, missing_module_hint
from burstmap.local.services.lambda_errors import (
    exit_error_payload,
    invocation_of_answer,
    out_of_memory_payload,
    timed_out_payload,
)
from burstmap.local.services.lambda_function import FunctionSpec, Invocation
from burstmap.local.services.lambda_memory import MemoryMonitor
from burstmap.local.services.process_groups import kill_group, lifeline_fd

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
        self,
        process: subprocess.Popen[bytes],
        requests: int,
        responses: int,
        lock: threading.Lock,
        limit_bytes: int,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.limit_bytes = limit_bytes
        self.out_of_memory = False  # set by the MemoryMonitor before it kills the group
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

    def is_busy(self) -> bool:
        return self.inflight > 0

    def kill_group(self) -> None:
        kill_group(self.process)

    def failure_payload(self, request_id: str, returncode: int | None) -> bytes:
        """What an invocation gets when this worker died under it."""
        if self.out_of_memory:
            return out_of_memory_payload(request_id)
        return exit_error_payload(request_id, returncode)

    def send(self, data: bytes) -> None:
        lambda_worker.send_message(self.requests, data)

    def wait_readable(self, seconds: float) -> bool:
        """True when a message (or EOF) is waiting; False after ``seconds``."""
        return bool(self._poller.poll(max(0, int(seconds * 1000))))

    def receive(self) -> bytes:
        return lambda_worker.recv_message(self.responses)

    def kill(self) -> int | None:
        """Stop the process and its group for good and return its exit code."""
        kill_group(self.process)
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
        kill_group(self.process)  # what the handler spawned dies with its worker
        self.close_pipes()
        return code


class FunctionPool:
    """The warm workers of one function: at most ``limit`` processes, started when first needed."""

    def __init__(
        self,
        spec: FunctionSpec,
        launch: WorkerLaunch,
        limit: int,
        count: Count,
        memory: MemoryMonitor | None = None,
        notice: Notice | None = None,
    ) -> None:
        self.spec = spec
        self.launch = launch
        self.limit = limit
        self.count = count
        self.memory = memory
        self.notice = notice
        self.hinted = False  # the one import hint of this function was given
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
        if self.memory is not None:
            self.memory.forget(worker)
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
            if self.memory is not None:
                self.memory.busy()
            try:
                self.wait_turn(worker, sequence)
            except NotStarted:
                continue  # queued behind an invocation that crashed or timed out: never ran
            try:
                message = self._answer(worker, timeout, send_failed)
            except Crashed as crash:
                self.discard(worker)
                self.count("crashes")
                return Invocation(
                    worker.failure_payload(request_id, crash.returncode), "Unhandled", request_id
                )
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
        self.init_answered(message)

    def init_answered(self, message: bytes) -> None:
        """A new worker finished its init phase. An init failure is remembered by the worker, which answers
        each invocation with it; a missing package also gets one hint per function on how to bundle it."""
        if message[:1] != lambda_worker.INIT_FAILED or self.hinted or self.notice is None:
            return
        try:
            document = json.loads(message[1:])
            hint = missing_module_hint(self.spec, document["errorType"], document["errorMessage"])
        except (ValueError, KeyError, TypeError):
            return
        if hint is not None:
            self.hinted = True
            self.notice(hint)

    # ------------------------------------------------------------------------------- processes

    def _start(self) -> Worker:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        lifeline = lifeline_fd()
        config = {
            "handler": self.spec.handler,
            "import_path": self.launch.import_path,
            "site_dirs": self.launch.site_dirs,
            "lifeline": lifeline,
            "environment": sorted(self.launch.env) if self.launch.isolated else None,
        }
        try:
            process = subprocess.Popen(
                [
                    *self.launch.command(WORKER_SCRIPT),
                    str(request_read),
                    str(response_write),
                    json.dumps(config),
                ],
                pass_fds=(request_read, response_write, lifeline),
                env=self.launch.env,
                cwd=self.launch.cwd,
                stdin=subprocess.DEVNULL,
                stdout=sys.__stderr__.fileno() if sys.__stderr__ else None,  # function logs: stderr
                start_new_session=True,  # its own process group, out of the terminal's reach
            )
        except BaseException:
            for fd in (request_read, request_write, response_read, response_write):
                os.close(fd)
            raise
        os.close(request_read)
        os.close(response_write)
        worker = Worker(
            process, request_write, response_read, self.lock, int(self.spec.memory_mb) * 1024 * 1024
        )
        worker.inflight = 1
        with self.cond:
            self.all.append(worker)
        if self.memory is not None:
            self.memory.watch(worker)
        self.count("workers_started")
        return worker

    def close(self) -> None:
        """Every worker's process group is killed, with whatever its handler left running. A busy worker's
        invoking thread then sees a crash and closes its pipes itself (no descriptor is closed under a
        thread still polling it)."""
        with self.cond:
            self.closed = True
            idle = [worker for worker in self.all if worker.inflight == 0]
            busy = [worker for worker in self.all if worker.inflight > 0]
            self.all.clear()
            self.cond.notify_all()
        for worker in busy:
            with suppress(OSError):
                worker.kill_group()
        for worker in idle:
            worker.kill()
        if self.memory is not None:
            for worker in (*idle, *busy):
                self.memory.forget(worker)


def _inflight(worker: Worker) -> int:
    return worker.inflight
