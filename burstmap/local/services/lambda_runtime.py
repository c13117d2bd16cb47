"""The local Lambda service: warm worker processes per function, the Lambda context object, timeouts,
crashed runtimes, injected throttling, and the error payloads AWS returns for each.

What an invocation returns, and why (the names Step Functions then reports are the payload's
``errorType``; it falls back to ``Lambda.Unknown`` only for a payload without one):

- handler exception: ``FunctionError: Unhandled`` and the Python runtime's document
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` (awslambdaric ``make_error``);
- timeout: the worker is killed and replaced; payload (written by the Lambda platform, not the
  runtime: compact JSON, errorType first) ``{"errorType":"Sandbox.Timedout",
  "errorMessage":"RequestId: <id> Error: Task timed out after 3.00 seconds"}``;
- a worker that exits or dies mid-invocation (``os._exit``, a signal, the OOM killer):
  ``{"errorType":"Runtime.ExitError","errorMessage":"RequestId: <id> Error: Runtime exited with
  error: exit status 1"}`` (or ``signal: killed``, ``signal: segmentation fault``, ...);
- a response over 6,291,556 bytes: ``{"errorMessage":"Response payload size exceeded maximum
  allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}``;
- service-side failures are raised, not returned: ``LambdaServiceError`` with
  ``Lambda.ResourceNotFoundException`` (unknown function), ``Lambda.TooManyRequestsException``
  (injected throttling, the handler does not run) or ``Lambda.InvalidRequestContentException``
  (a payload that is not JSON).

Handlers given as strings (``module.function``) run in child processes: each one imports the handler
once, like an execution environment, and serves invocations one at a time; a function has up to
``workers`` of them, started on demand. Handlers given as Python callables run **in the calling
thread, without isolation**: same process, same environment variables (the FunctionSpec's
``environment`` is not applied), no crash containment, and the timeout can only be reported after
the handler returns (its result is then discarded and ``Sandbox.Timedout`` returned). ``memory_mb``
is passed to the context but not enforced.

For the conformance harness, an exception may carry ``stack_trace`` (a list of strings) to stand in
for the formatted trace in the error document.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burstmap.local.core.errors import StatesError
from burstmap.local.core.limits import LAMBDA_RESPONSE_LIMIT_BYTES as MAX_RESPONSE_BYTES
from burstmap.local.core.limits import LOCAL_ACCOUNT as DEFAULT_ACCOUNT
from burstmap.local.core.limits import LOCAL_REGION as DEFAULT_REGION
from burstmap.local.services import lambda_worker

LATEST = "$LATEST"
"""Lambda's synchronous response limit, as its error message states it."""
INIT_TIMEOUT_SECONDS = 10.0
"""Lambda gives the init phase (importing the handler) 10 s, apart from the function timeout."""
PYTHON_RUNTIME = "python3.12"
"""The runtime whose behaviour the workers copy (the conformance cases were recorded on it)."""

_WORKER_SCRIPT = Path(lambda_worker.__file__).resolve()
_THIS_FILE = __file__


class LambdaServiceError(StatesError):
    """The Lambda service refused the call (the function never ran): ``Lambda.*`` error names."""


class LambdaConfigurationError(ValueError):
    """A FunctionSpec or runtime option that cannot work; the message says what to change."""


@dataclass
class FunctionSpec:
    """One Lambda function, as the engine runs it."""

    name: str
    handler: str | Callable[..., Any]
    code_paths: list[Path] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3.0
    memory_mb: int = 128


@dataclass
class Invocation:
    """What lambda:Invoke returned."""

    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str = LATEST


@dataclass
class RuntimeCounters:
    """A snapshot of the runtime's counters (invocations counts every call, throttled ones too)."""

    invocations: int = 0
    throttles: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    workers_started: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------ payloads


def _compact(pairs: list[tuple[str, str]]) -> bytes:
    """Platform-written error payloads are compact JSON (no spaces), in the given key order."""
    return json.dumps(dict(pairs), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def timed_out_payload(request_id: str, timeout_seconds: float) -> bytes:
    return _compact(
        [
            ("errorType", "Sandbox.Timedout"),
            (
                "errorMessage",
                f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds",
            ),
        ]
    )


def exit_error_payload(request_id: str, returncode: int | None) -> bytes:
    if returncode is None or returncode == 0:
        reason = "Runtime exited without providing a reason"
    elif returncode > 0:
        reason = f"Runtime exited with error: exit status {returncode}"
    else:
        try:
            name = (signal.strsignal(-returncode) or f"signal {-returncode}").lower()
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"Runtime exited with error: signal: {name}"
    return _compact(
        [("errorType", "Runtime.ExitError"), ("errorMessage", f"RequestId: {request_id} Error: {reason}")]
    )


def response_too_large_payload() -> bytes:
    return _compact(
        [
            (
                "errorMessage",
                f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            ),
            ("errorType", "Function.ResponseSizeTooLarge"),
        ]
    )


def invalid_request_content(detail: str) -> LambdaServiceError:
    """Lambda's answer to a payload that is not JSON (the detail is Python's parser message, where
    AWS quotes its Java parser's)."""
    return LambdaServiceError(
        "Lambda.InvalidRequestContentException",
        f"Could not parse request body into json: Could not parse payload into json: {detail} "
        f"(Service: AWSLambda; Status Code: 400; Error Code: InvalidRequestContentException; "
        f"Request ID: {uuid.uuid4()}; Proxy: null)",
    )


# ------------------------------------------------------------------------------------- ARN resolution


def parse_function_reference(reference: str) -> tuple[str, str | None, str | None, str | None]:
    """(name, qualifier, region, account) from a name, ``name:qualifier``, a partial ARN
    (``account:function:name[:qualifier]``) or a full ARN
    (``arn:aws:lambda:region:account:function:name[:qualifier]``)."""
    parts = reference.split(":")
    if parts[0] == "arn" and len(parts) in (7, 8) and parts[2] == "lambda" and parts[5] == "function":
        return parts[6], (parts[7] if len(parts) == 8 else None), parts[3], parts[4]
    if len(parts) in (3, 4) and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) == 4 else None), None, parts[0]
    if len(parts) in (1, 2):
        return parts[0], (parts[1] if len(parts) == 2 else None), None, None
    return reference, None, None, None


# --------------------------------------------------------------------------------------- the workers


class _Worker:
    """One child process (an execution environment) and the two pipe ends the parent holds.

    Invocations may be queued in its request pipe behind the one it runs (at most
    ``QUEUE_DEPTH``), so it starts the next as soon as it answers the last: the worker serves them
    one at a time, in the order sent, and the invoking threads read the answers in that order
    (``sent`` numbers the requests, ``turn`` is the one whose answer is read next)."""

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


class _Crashed(Exception):
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode


class _NotStarted(Exception):
    """The worker an invocation was queued on failed before reaching it: run it on another one."""


QUEUE_DEPTH = 2
"""Invocations a worker holds at once (the one it runs and one queued): the worker then never
waits for the parent's threads between two invocations. New workers are started (up to the
limit) before any invocation is queued behind another."""


class _FunctionPool:
    """The warm workers of one function: at most ``limit`` processes, started when first needed."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], limit: int, runtime: LambdaRuntime) -> None:
        self.spec = spec
        self.env = env
        self.limit = limit
        self.runtime = runtime
        self.live = 0
        self.closed = False
        self.all: list[_Worker] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # a worker's queue has room, or the pool closed

    def acquire(self, block: bool = True) -> _Worker | None:
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

    def wait_turn(self, worker: _Worker, sequence: int) -> None:
        """Block until the answers before ``sequence`` are read; _NotStarted if the worker broke."""
        with self.cond:
            while worker.turn != sequence and not worker.broken:
                worker.turn_changed.wait()
            if worker.broken:
                worker.inflight -= 1
                self.cond.notify()
                raise _NotStarted()

    def not_started(self, worker: _Worker) -> None:
        """An invocation queued on a broken worker leaves it (it will be sent to another one)."""
        with self.cond:
            worker.inflight -= 1
            self.cond.notify()

    def answered(self, worker: _Worker) -> None:
        """The invocation whose turn it was is answered and the worker is healthy."""
        with self.cond:
            worker.turn += 1
            worker.inflight -= 1
            stop = self.closed and worker.inflight == 0
            worker.turn_changed.notify_all()
            self.cond.notify()
        if stop:  # closed while it ran: close() left it to its invoking thread
            worker.kill()

    def discard(self, worker: _Worker) -> None:
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

    def _start(self) -> _Worker:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        config = {"handler": self.spec.handler, "code_paths": [str(p) for p in self.spec.code_paths]}
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(_WORKER_SCRIPT),
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
        worker = _Worker(process, request_write, response_read, self.lock)
        worker.inflight = 1
        with self.cond:
            self.all.append(worker)
        self.runtime._count("workers_started")
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


def _inflight(worker: _Worker) -> int:
    return worker.inflight


# ------------------------------------------------------------------------------------------ runtime


class LambdaRuntime:
    """The functions of one run, invoked the way Step Functions invokes Lambda.

    Thread-safe: many map children call :meth:`invoke` at once. Close it (or use ``with``) to stop
    the worker processes.
    """

    def __init__(
        self,
        functions: Iterable[FunctionSpec],
        *,
        workers: int | None = None,
        throttle_rate: float = 0.0,
        seed: int = 0,
        extra_env: dict[str, str] | None = None,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        if workers is not None and workers < 1:
            raise LambdaConfigurationError(f"workers must be at least 1, got {workers}")
        if not 0.0 <= throttle_rate <= 1.0:
            raise LambdaConfigurationError(f"throttle_rate must be between 0 and 1, got {throttle_rate}")
        self.workers = workers or os.cpu_count() or 1
        self.throttle_rate = throttle_rate
        self.region = region
        self.account = account
        self._extra_env = dict(extra_env or {})
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counters = RuntimeCounters()
        self._specs: dict[str, FunctionSpec] = {}
        self._pools: dict[str, _FunctionPool] = {}
        self._closed = False
        for spec in functions:
            self._add(spec)

    # -------------------------------------------------------------------------------- configuration

    def _add(self, spec: FunctionSpec) -> None:
        if not spec.name:
            raise LambdaConfigurationError("a FunctionSpec needs a name")
        if spec.name in self._specs:
            raise LambdaConfigurationError(f"function {spec.name!r} is defined twice")
        if spec.timeout_seconds <= 0:
            raise LambdaConfigurationError(
                f"function {spec.name!r}: timeout_seconds must be positive, got {spec.timeout_seconds}"
            )
        if isinstance(spec.handler, str):
            if "." not in spec.handler and ":" not in spec.handler:
                raise LambdaConfigurationError(
                    f"function {spec.name!r}: handler {spec.handler!r} must be 'module.function' "
                    "(or 'module:function')"
                )
            self._pools[spec.name] = _FunctionPool(spec, self._environment(spec), self.workers, self)
        elif not callable(spec.handler):
            raise LambdaConfigurationError(
                f"function {spec.name!r}: handler must be a 'module.function' string or a callable, "
                f"got {type(spec.handler).__name__}"
            )
        self._specs[spec.name] = spec

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        """A worker's environment: this process's, minus its AWS_* settings (credentials and profiles
        must not leak into handlers), plus Lambda's reserved variables, the function's variables, and
        ``extra_env`` (the local plumbing: S3 endpoint and fake credentials) last."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        stream = f"{time.strftime('%Y/%m/%d')}/[{LATEST}]{uuid.uuid4().hex}"
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{PYTHON_RUNTIME}",
                "_HANDLER": str(spec.handler),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if spec.code_paths:
            env["LAMBDA_TASK_ROOT"] = str(spec.code_paths[0])
        env.update({k: str(v) for k, v in spec.environment.items()})
        env.update(self._extra_env)
        return env

    # ------------------------------------------------------------------------------------- counters

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + amount)

    @property
    def counters(self) -> RuntimeCounters:
        """A consistent snapshot of the counters."""
        with self._lock:
            return RuntimeCounters(**self._counters.as_dict())

    def stats(self) -> dict[str, int]:
        return self.counters.as_dict()

    # ------------------------------------------------------------------------------------- invoking

    def resolve(self, function: str) -> tuple[FunctionSpec, str]:
        """The function a name or ARN refers to, and the ARN the handler sees as invoked."""
        name, qualifier, region, account = parse_function_reference(function)
        spec = self._specs.get(name)
        foreign = (region not in (None, self.region)) or (account not in (None, self.account))
        if spec is None or foreign:
            arn = (
                f"arn:aws:lambda:{region or self.region}:{account or self.account}:function:"
                f"{name}:{qualifier or LATEST}"
            )
            request_id = str(uuid.uuid4())
            raise LambdaServiceError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
                f"ResourceNotFoundException; Request ID: {request_id}; Proxy: null)",
            )
        invoked_arn = self.function_arn(name) + (f":{qualifier}" if qualifier else "")
        return spec, invoked_arn

    def invoke(self, function: str, payload: bytes) -> Invocation:
        """Invoke synchronously (RequestResponse). Function errors come back in the Invocation;
        service errors (unknown function, throttling) raise LambdaServiceError."""
        spec, invoked_arn = self._admit(function)
        request_id = str(uuid.uuid4())
        if isinstance(spec.handler, str):
            invocation = self._invoke_worker(self._pools[spec.name], spec, invoked_arn, request_id, payload)
        else:
            invocation = self._invoke_callable(spec, invoked_arn, request_id, payload)
        return self._delivered(invocation)

    def _admit(self, function: str) -> tuple[FunctionSpec, str]:
        """What every invocation goes through before a handler runs: the function is resolved,
        counted, and throttled at the injected rate (LambdaServiceError)."""
        if self._closed:
            raise RuntimeError("the LambdaRuntime is closed: create a new one to invoke functions")
        spec, invoked_arn = self.resolve(function)
        self._count("invocations")
        if self.throttle_rate:
            with self._lock:
                throttled = self._random.random() < self.throttle_rate
            if throttled:
                self._count("throttles")
                raise LambdaServiceError(
                    "Lambda.TooManyRequestsException",
                    f"Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: "
                    f"TooManyRequestsException; Request ID: {uuid.uuid4()}; Proxy: null)",
                )
        return spec, invoked_arn

    def _delivered(self, invocation: Invocation) -> Invocation:
        """The invocation as the caller gets it: an oversized response becomes Lambda's error."""
        if invocation.function_error is None and len(invocation.payload) > MAX_RESPONSE_BYTES:
            invocation = Invocation(response_too_large_payload(), "Unhandled", invocation.request_id)
        if invocation.function_error is not None:
            self._count("errors")
        return invocation

    def dispatcher(self, function: str) -> InvocationDispatcher | None:
        """A single-threaded, non-blocking way to invoke ``function`` many times at once (the
        distributed Map's common child), or None when the function is not served by worker
        processes (a callable handler, an unknown function: use :meth:`invoke`)."""
        try:
            spec, invoked_arn = self.resolve(function)
        except LambdaServiceError:
            return None
        if not isinstance(spec.handler, str):
            return None
        return InvocationDispatcher(self, function, spec, self._pools[spec.name])

    def _invoke_worker(
        self, pool: _FunctionPool, spec: FunctionSpec, invoked_arn: str, request_id: str, payload: bytes
    ) -> Invocation:
        timeout = float(spec.timeout_seconds)
        arn_bytes = invoked_arn.encode("utf-8")
        header = lambda_worker.HEADER.pack(timeout * 1000, request_id.encode("ascii"), len(arn_bytes))
        request = header + arn_bytes + payload
        while True:
            worker = pool.acquire()
            with worker.send_lock:
                sequence = worker.sent
                worker.sent += 1
                try:
                    worker.send(request)
                    send_failed = False
                except OSError:  # the worker died: its pipe says how, in turn
                    send_failed = True
            try:
                pool.wait_turn(worker, sequence)
            except _NotStarted:
                continue  # queued behind an invocation that crashed or timed out: never ran
            try:
                message = self._answer(worker, spec, request_id, timeout, send_failed)
            except _Crashed as crash:
                pool.discard(worker)
                self._count("crashes")
                return Invocation(exit_error_payload(request_id, crash.returncode), "Unhandled", request_id)
            except _InitTimedOut:
                pool.discard(worker)
                self._count("timeouts")
                return Invocation(
                    timed_out_payload(request_id, INIT_TIMEOUT_SECONDS), "Unhandled", request_id
                )
            except _TimedOut:
                pool.discard(worker)
                self._count("timeouts")
                return Invocation(timed_out_payload(request_id, timeout), "Unhandled", request_id)
            except BaseException:
                pool.discard(worker)
                raise
            pool.answered(worker)
            break
        return _message_invocation(message, request_id)

    def _answer(
        self, worker: _Worker, spec: FunctionSpec, request_id: str, timeout: float, send_failed: bool
    ) -> bytes:
        """The worker's answer to the invocation whose turn it is (its timeout counts from now,
        when the worker has finished the invocations before it)."""
        if send_failed:
            raise _Crashed(worker.exit_code_after_eof())
        self._wait_ready(worker, spec, request_id)
        if not worker.wait_readable(timeout):
            raise _TimedOut()
        try:
            return worker.receive()
        except (EOFError, OSError) as error:
            raise _Crashed(worker.exit_code_after_eof()) from error

    @staticmethod
    def _wait_ready(worker: _Worker, spec: FunctionSpec, request_id: str) -> None:
        """The first invocation of a new worker waits for its init phase (the handler import)."""
        if worker.ready:
            return
        if not worker.wait_readable(max(INIT_TIMEOUT_SECONDS, float(spec.timeout_seconds))):
            raise _InitTimedOut()
        try:
            message = worker.receive()
        except (EOFError, OSError) as error:
            raise _Crashed(worker.exit_code_after_eof()) from error
        worker.ready = True
        # An init failure is remembered by the worker, which answers each invocation with it.
        del message

    def _invoke_callable(
        self, spec: FunctionSpec, invoked_arn: str, request_id: str, payload: bytes
    ) -> Invocation:
        handler = spec.handler
        assert callable(handler)
        timeout = float(spec.timeout_seconds)
        started = time.monotonic()
        context = lambda_worker.LambdaContext(request_id, invoked_arn, time.time() * 1000 + timeout * 1000)
        context.function_name = spec.name
        context.function_version = LATEST
        context.memory_limit_in_mb = str(spec.memory_mb)
        context.log_group_name = f"/aws/lambda/{spec.name}"
        context.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[{LATEST}]{uuid.uuid4().hex}"
        try:
            event = json.loads(payload) if payload else {}
        except ValueError as bad_json:
            raise invalid_request_content(str(bad_json)) from None
        try:
            result = handler(event, context)
            body = result if isinstance(result, bytes) else None
            error: bytes | None = None
            if body is None:
                try:
                    body = lambda_worker.to_json(result)
                except Exception as marshal_error:
                    error = lambda_worker.error_document(
                        f"Unable to marshal response: {marshal_error}", "Runtime.MarshalError", request_id, []
                    )
        except Exception as raised:
            body = None
            error = lambda_worker.error_document(
                str(raised),
                type(raised).__name__,
                request_id,
                lambda_worker.handler_stack_trace(raised, _THIS_FILE),
            )
        if time.monotonic() - started > timeout:
            self._count("timeouts")
            return Invocation(timed_out_payload(request_id, timeout), "Unhandled", request_id)
        if error is not None:
            return Invocation(error, "Unhandled", request_id)
        assert body is not None
        return Invocation(body, None, request_id)

    # -------------------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Stop every worker process (idempotent)."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _message_invocation(message: bytes, request_id: str) -> Invocation:
    """A worker's answer as lambda:Invoke returns it (a payload that is not JSON raises, as the
    Lambda service refuses it)."""
    status, body = message[:1], message[1:]
    if status == lambda_worker.OK:
        return Invocation(body, None, request_id)
    if status == lambda_worker.BAD_REQUEST:
        raise invalid_request_content(body.decode("utf-8", "replace"))
    return Invocation(body, "Unhandled", request_id)


# ------------------------------------------------------------------------- single-threaded dispatch


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
    pool may be shared with threads calling ``invoke`` at the same time."""

    RECHECK_SECONDS = 0.005
    """How often to look again at a worker whose answer a thread of ``invoke`` is reading first."""

    def __init__(
        self, runtime: LambdaRuntime, function: str, spec: FunctionSpec, pool: _FunctionPool
    ) -> None:
        self.runtime = runtime
        self.function = function
        self.spec = spec
        self.pool = pool
        self.timeout = float(spec.timeout_seconds)
        self._unsent: deque[_Queued] = deque()
        self._sent: dict[_Worker, deque[_Queued]] = {}
        self._deadlines: dict[_Worker, float] = {}  # the head invocation's, once its turn came
        self._done: list[tuple[Any, Invocation | StatesError]] = []

    @property
    def pending(self) -> int:
        return len(self._unsent) + sum(len(queue) for queue in self._sent.values())

    def submit(self, payload: bytes, token: Any) -> None:
        """Start one invocation; ``token`` comes back with its result from :meth:`wait`."""
        _, invoked_arn = self.runtime._admit(self.function)
        request_id = str(uuid.uuid4())
        arn_bytes = invoked_arn.encode("utf-8")
        header = lambda_worker.HEADER.pack(self.timeout * 1000, request_id.encode("ascii"), len(arn_bytes))
        self._unsent.append(_Queued(token, request_id, header + arn_bytes + payload))
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

    def wait(self, timeout: float | None = None) -> list[tuple[Any, Invocation | StatesError]]:
        """Finished invocations as (token, Invocation or the service error), waiting up to
        ``timeout`` seconds (None: until one finishes) when none has finished yet."""
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            self._send()
            now = time.monotonic()
            poller = select.poll()
            watched: dict[int, _Worker] = {}
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

    def _read(self, worker: _Worker) -> None:
        try:
            message = worker.receive()
        except (EOFError, OSError):
            self._crashed(worker, worker.exit_code_after_eof())
            return
        if not worker.ready:  # the init phase is over: the invocation's own timeout starts now
            worker.ready = True
            self._deadlines[worker] = time.monotonic() + self.timeout
            return
        queued = self._sent[worker].popleft()
        self._deadlines.pop(worker, None)
        self.pool.answered(worker)
        try:
            result: Invocation | StatesError = self.runtime._delivered(
                _message_invocation(message, queued.request_id)
            )
        except StatesError as error:
            result = error
        self._done.append((queued.token, result))

    def _failed_head(self, worker: _Worker, payload: Callable[[str], bytes], counter: str) -> None:
        queued = self._sent[worker].popleft()
        self._deadlines.pop(worker, None)
        self.pool.discard(worker)
        self.runtime._count(counter)
        failure = Invocation(payload(queued.request_id), "Unhandled", queued.request_id)
        self._done.append((queued.token, self.runtime._delivered(failure)))
        self._requeue(worker)

    def _crashed(self, worker: _Worker, returncode: int | None) -> None:
        self._failed_head(worker, lambda request_id: exit_error_payload(request_id, returncode), "crashes")

    def _timed_out(self, worker: _Worker) -> None:
        seconds = self.timeout if worker.ready else INIT_TIMEOUT_SECONDS
        self._failed_head(worker, lambda request_id: timed_out_payload(request_id, seconds), "timeouts")

    def _requeue(self, worker: _Worker) -> None:
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


class _InitTimedOut(Exception):
    pass


class _TimedOut(Exception):
    pass
