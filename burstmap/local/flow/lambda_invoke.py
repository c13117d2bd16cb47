"""Invoking a Lambda function: the one implementation behind the Task state and the distributed
Map's one-Task children.

A Task invokes either through the optimized integration (`Resource: arn:aws:states:::lambda:invoke`
with Parameters/Arguments {FunctionName, Payload}; its result is the response envelope) or with a
function ARN as the Resource (its result is the payload alone). Either way: the payload is sent
as compact JSON (a string Payload verbatim), a refusal by the service and a handler's error become
ASL errors with AWS's names and causes, and a response past 256 KiB fails the state.

Sources: the AWS developer guide, "Invoke an AWS Lambda function with Step Functions", and the
AWS-recorded conformance cases (shared/conformance), whose exact cause texts are reproduced here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from typing import Any

from burstmap.local.core.context import EventCounter, Services, Stats
from burstmap.local.core.errors import DATA_LIMIT_EXCEEDED, TIMEOUT, StateRuntimeError, StatesError
from burstmap.local.core.history import TaskEvents
from burstmap.local.core.json_text import json_size, to_json
from burstmap.local.core.limits import LAMBDA_INVOKE, STATE_PAYLOAD_LIMIT_BYTES
from burstmap.local.core.protocols import Invocation

INVOKE_PARAMETERS = frozenset({"FunctionName", "Payload"})
"""The lambda:invoke Parameters (or Arguments) the engine runs."""
FUNCTION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)
"""A function ARN given directly as a Task's Resource."""
THROTTLED = "Lambda.TooManyRequestsException"


def payload_bytes(value: Any) -> bytes:
    """The request payload: a string is sent verbatim, nothing as {}, anything else as compact JSON."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b"{}"
    return to_json(value).encode("utf-8")


@dataclass(frozen=True)
class LambdaRequest:
    """One invocation a Task makes: which function, the payload, and how the result is shaped."""

    function: str
    payload: bytes
    integration: bool
    """True for lambda:invoke (the result is the response envelope), False for a function ARN."""
    parameters: Any = field(default=None, compare=False)
    """The resolved Parameters (or Arguments), as the TaskScheduled history event shows them."""

    @classmethod
    def for_task(cls, resource: str, parameters: Any) -> LambdaRequest:
        """The request from a Task's Resource and its resolved Parameters (or Arguments)."""
        if resource != LAMBDA_INVOKE:
            return cls(
                resource, to_json(parameters).encode("utf-8"), integration=False, parameters=parameters
            )
        if not isinstance(parameters, dict) or not isinstance(parameters.get("FunctionName"), str):
            raise StateRuntimeError("The lambda:invoke Parameters must give FunctionName as a string")
        payload = payload_bytes(parameters.get("Payload"))
        return cls(parameters["FunctionName"], payload, integration=True, parameters=parameters)


def task_input_error(state_name: str, input_bytes: int) -> StatesError | None:
    """A Task whose input, after Parameters (or Arguments) processing, passes 256 KiB fails with
    States.DataLimitExceeded (error-handling guide, "States.DataLimitExceeded")."""
    if input_bytes <= STATE_PAYLOAD_LIMIT_BYTES:
        return None
    return StatesError(
        DATA_LIMIT_EXCEEDED,
        f"The state/task '{state_name}' has an input, after Parameters processing, of {input_bytes} bytes: "
        "a size exceeding the maximum number of bytes service limit.",
    )


def request_input_bytes(request: LambdaRequest) -> int:
    """The size of the Task's resolved Parameters: the payload, plus the envelope around it for
    lambda:invoke (serialized without the payload, which is already bytes)."""
    if not request.integration:
        return len(request.payload)
    rest = {name: value for name, value in request.parameters.items() if name != "Payload"}
    if "Payload" not in request.parameters:  # the function gets {}, which the Parameters do not hold
        return json_size(rest)
    return envelope_bytes(rest) + len(request.payload)


def envelope_bytes(fields: dict[str, Any]) -> int:
    """The bytes a lambda:invoke Parameters object adds around its Payload: `fields` and `,"Payload":`."""
    return json_size(fields) + len(',"Payload":')


def require_runtime(services: Services, function: str) -> None:
    """A Task cannot run without Lambda functions: refused as Lambda would refuse an unknown one."""
    if services.runtime is None:
        raise StatesError(
            "Lambda.ResourceNotFoundException",
            f"no Lambda functions were given to the local engine, so '{function}' cannot run; "
            "pass functions= (or runtime=) to burstmap.local.execute",
        )


def count_refusal(stats: Stats, error: StatesError) -> None:
    """The Lambda service refused an invocation: counted as a failure (and a throttle)."""
    stats.add("failures")
    if error.error == THROTTLED:
        stats.add("throttles")


def invoke(services: Services, function: str, payload: bytes, *, timeout: float | None = None) -> Invocation:
    """One attempt, counted; a refusal or a timeout (States.Timeout) is counted as a failure and
    raised."""
    services.stats.add("invocations")

    def call() -> Invocation:
        return services.runtime.invoke(function, payload)

    try:
        return services.clock.call_with_timeout(call, timeout) if timeout is not None else call()
    except TimeoutError:
        services.stats.add("failures")
        raise StatesError(TIMEOUT, "") from None
    except StatesError as exc:
        count_refusal(services.stats, exc)
        raise


def function_error(body: bytes, *, integration: bool) -> StatesError:
    """A handler's failure: error = errorType (Lambda.Unknown without one); cause = the payload,
    re-serialised compactly by the lambda:invoke integration, as the runtime wrote it for an ARN."""
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    error = document.get("errorType") if isinstance(document, dict) else None
    if not isinstance(error, str):
        error = "Lambda.Unknown"
    cause = to_json(document) if integration and document is not None else text
    return StatesError(error, cause)


def response_payload(invocation: Invocation, function: str, *, integration: bool, stats: Stats) -> Any:
    """The function's result: its JSON payload; a handler error, a payload past 256 KiB or one that
    is not JSON fails the attempt (a size error names 'lambda' for the integration, else the ARN)."""
    body: bytes = invocation.payload
    if invocation.function_error:
        stats.add("failures")
        raise function_error(body, integration=integration)
    if len(body) > STATE_PAYLOAD_LIMIT_BYTES:
        raise StatesError(
            DATA_LIMIT_EXCEEDED,
            f"The state/task '{'lambda' if integration else function}' returned a result with a size "
            "exceeding the maximum number of bytes service limit.",
        )
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        raise StatesError(
            "Lambda.Unknown",
            f"The function '{function}' returned a payload that is not JSON: {body[:200]!r}",
        ) from None


def run_task(services: Services, request: LambdaRequest, timeout: float | None, events: EventCounter) -> Any:
    """A Task state's attempt: invoke, then its result (the envelope for lambda:invoke), with the
    attempt's history events (scheduled, started, then succeeded, failed or timed out)."""
    history = TaskEvents(
        request.function, request.integration, request.parameters, request.payload, services.region, timeout
    )
    events.emit(history.scheduled, history.scheduled_details)
    events.emit(history.started, history.started_details)
    try:
        invocation = invoke(services, request.function, request.payload, timeout=timeout)
        result = response_payload(
            invocation, request.function, integration=request.integration, stats=services.stats
        )
    except StatesError as exc:
        timed_out = exc.error == TIMEOUT
        failed = partial(history.failed_details, exc.error, exc.cause, timed_out)
        events.emit(history.ended_badly(timed_out), failed)
        raise
    if request.integration:
        result = {
            "ExecutedVersion": invocation.executed_version,
            "Payload": result,
            "SdkHttpMetadata": _http_metadata(
                invocation.request_id,
                invocation.executed_version,
                len(invocation.payload),
                services.clock.now(),
            ),
            "SdkResponseMetadata": {"RequestId": invocation.request_id},
            "StatusCode": 200,
        }
    events.emit(history.succeeded, lambda: history.succeeded_details(result))
    return result


def _http_metadata(request_id: str, version: str, length: int, now: datetime) -> dict[str, Any]:
    date = format_datetime(now.astimezone(UTC), usegmt=True)
    trace = f"Root=1-{int(now.timestamp()):08x}-{request_id.replace('-', '')[:24]};Sampled=0;Lineage=1"
    single = {
        "Connection": "keep-alive",
        "Content-Length": str(length),
        "Content-Type": "application/json",
        "Date": date,
        "X-Amz-Executed-Version": version,
        "x-amzn-Remapped-Content-Length": "0",
        "x-amzn-RequestId": request_id,
        "X-Amzn-Trace-Id": trace,
    }
    return {
        "AllHttpHeaders": {key: [value] for key, value in single.items()},
        "HttpHeaders": single,
        "HttpStatusCode": 200,
    }
