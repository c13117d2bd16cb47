"""The local Lambda service: the functions of one run, invoked the way Step Functions invokes Lambda.

Handlers given as strings (``module.function``) run in child processes (lambda_pool.py): each one
imports the handler once, like an execution environment, and serves invocations one at a time; a
function has up to ``workers`` of them, started on demand. They see what the function would see on
Lambda (lambda_environment.py: its Python version when installed, its code, layers and bundled packages,
the runtime's boto3 and nothing else, Lambda's environment variables), their memory is held to
``memory_mb`` (lambda_memory.py), and nothing they start outlives them (process_groups.py). Handlers
given as Python callables run **in the calling thread, without isolation**: same process, same
environment variables (the FunctionSpec's ``environment`` is not applied), no crash containment, no
memory limit, and the timeout can only be reported after the handler returns (its result is then
discarded and ``Sandbox.Timedout`` returned). What each failure returns is in lambda_errors.py.

Warnings about a function (another Python version, native code for another architecture, a package it
imports but does not bundle) are given once per function to ``on_notice``, by default the
``burstmap.local.lambda`` logger (shown on stderr when logging is not configured).

For the conformance harness, an exception may carry ``stack_trace`` (a list of strings) to stand in
for the formatted trace in the error document.

Modules: lambda_function (FunctionSpec, Invocation, names and ARNs, the environment), lambda_errors
(error payloads, response limit, service errors), lambda_pool (worker processes and their pool),
lambda_dispatcher (many invocations from one thread), lambda_worker (the worker process itself),
lambda_environment / lambda_dependencies / python_interpreters (what a worker sees), lambda_memory
(MemorySize), process_groups (process groups and the lifeline pipe).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable

from burstmap.local.core.limits import LOCAL_ACCOUNT as DEFAULT_ACCOUNT
from burstmap.local.core.limits import LOCAL_REGION as DEFAULT_REGION
from burstmap.local.services import lambda_worker
from burstmap.local.services.lambda_dispatcher import InvocationDispatcher
from burstmap.local.services.lambda_environment import Notice, prepare_launch
from burstmap.local.services.lambda_errors import (
    LambdaConfigurationError,
    LambdaServiceError,
    invalid_request_content,
    resource_not_found,
    timed_out_payload,
    too_many_requests,
    within_response_limit,
)
from burstmap.local.services.lambda_function import (
    LATEST,
    FunctionSpec,
    Invocation,
    RuntimeCounters,
    log_stream_name,
    parse_function_reference,
)
from burstmap.local.services.lambda_memory import MemoryMonitor
from burstmap.local.services.lambda_pool import FunctionPool, encode_request

__all__ = [
    "FunctionSpec",
    "Invocation",
    "InvocationDispatcher",
    "LambdaConfigurationError",
    "LambdaRuntime",
    "LambdaServiceError",
    "RuntimeCounters",
]

_THIS_FILE = __file__
LOGGER = logging.getLogger("burstmap.local.lambda")


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
        on_notice: Notice | None = None,
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
        self._pools: dict[str, FunctionPool] = {}
        self._closed = False
        self._notice: Notice = on_notice or LOGGER.warning
        self._memory = MemoryMonitor()
        try:
            for spec in functions:
                self._add(spec)
        except BaseException:
            self.close()
            raise
        if self._pools and not self._memory.enabled:
            self._notice(
                "MemorySize is not enforced on this system (it has no /proc with process children): "
                "a function that outgrows its memory here fails with Runtime.OutOfMemory on AWS"
            )

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
            launch = prepare_launch(spec, self.region, self._extra_env, self._notice)
            self._pools[spec.name] = FunctionPool(
                spec, launch, self.workers, self._count, memory=self._memory, notice=self._notice
            )
        elif not callable(spec.handler):
            raise LambdaConfigurationError(
                f"function {spec.name!r}: handler must be a 'module.function' string or a callable, "
                f"got {type(spec.handler).__name__}"
            )
        self._specs[spec.name] = spec

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

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
            raise resource_not_found(
                f"arn:aws:lambda:{region or self.region}:{account or self.account}:function:"
                f"{name}:{qualifier or LATEST}"
            )
        invoked_arn = self.function_arn(name) + (f":{qualifier}" if qualifier else "")
        return spec, invoked_arn

    def invoke(self, function: str, payload: bytes) -> Invocation:
        """Invoke synchronously (RequestResponse). Function errors come back in the Invocation;
        service errors (unknown function, throttling) raise LambdaServiceError."""
        spec, invoked_arn = self._admit(function)
        request_id = str(uuid.uuid4())
        if isinstance(spec.handler, str):
            request = encode_request(float(spec.timeout_seconds), request_id, invoked_arn, payload)
            invocation = self._pools[spec.name].invoke(request, request_id)
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
                raise too_many_requests()
        return spec, invoked_arn

    def _delivered(self, invocation: Invocation) -> Invocation:
        """The invocation as the caller gets it: an oversized response becomes Lambda's error."""
        invocation = within_response_limit(invocation)
        if invocation.function_error is not None:
            self._count("errors")
        return invocation

    def dispatcher(self, function: str) -> InvocationDispatcher | None:
        """A single-threaded, non-blocking way to invoke ``function`` many times at once (the
        distributed Map's common child), or None when the function is not served by worker
        processes (a callable handler, an unknown function: use :meth:`invoke`)."""
        try:
            spec, _ = self.resolve(function)
        except LambdaServiceError:
            return None
        if not isinstance(spec.handler, str):
            return None
        return InvocationDispatcher(
            function,
            spec,
            self._pools[spec.name],
            admit=self._admit,
            deliver=self._delivered,
            count=self._count,
        )

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
        context.log_stream_name = log_stream_name()
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
        self._memory.stop()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
