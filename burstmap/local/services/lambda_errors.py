"""What Lambda answers when an invocation does not simply return: the error payloads, the response size
limit, and the service errors raised instead of an answer.

What an invocation returns, and why (the names Step Functions then reports are the payload's
``errorType``; it falls back to ``Lambda.Unknown`` only for a payload without one):

- handler exception: ``FunctionError: Unhandled`` and the Python runtime's document
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` (awslambdaric ``make_error``; written by
  lambda_worker.py);
- timeout: the worker is killed and replaced; payload (written by the Lambda platform, not the
  runtime: compact JSON, errorType first) ``{"errorType":"Sandbox.Timedout",
  "errorMessage":"RequestId: <id> Error: Task timed out after 3.00 seconds"}``;
- a worker that exits or dies mid-invocation (``os._exit``, a signal):
  ``{"errorType":"Runtime.ExitError","errorMessage":"RequestId: <id> Error: Runtime exited with
  error: exit status 1"}`` (or ``signal: killed``, ``signal: segmentation fault``, ...);
- a worker whose processes passed the function's MemorySize (killed by lambda_memory.py):
  ``{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: <id> Error: Runtime exited with
  error: signal: killed"}``;
- a response over 6,291,556 bytes: ``{"errorMessage":"Response payload size exceeded maximum
  allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}``;
- service-side failures are raised, not returned: ``LambdaServiceError`` with
  ``Lambda.ResourceNotFoundException`` (unknown function), ``Lambda.TooManyRequestsException``
  (injected throttling, the handler does not run) or ``Lambda.InvalidRequestContentException``
  (a payload that is not JSON).
"""

from __future__ import annotations

import json
import signal
import uuid

from burstmap.local.core.errors import StatesError
from burstmap.local.core.limits import LAMBDA_RESPONSE_LIMIT_BYTES as MAX_RESPONSE_BYTES
from burstmap.local.services import lambda_worker
from burstmap.local.services.lambda_function import Invocation

__all__ = [
    "MAX_RESPONSE_BYTES",
    "LambdaConfigurationError",
    "LambdaServiceError",
    "exit_error_payload",
    "invalid_request_content",
    "invocation_of_answer",
    "out_of_memory_payload",
    "resource_not_found",
    "response_too_large_payload",
    "timed_out_payload",
    "too_many_requests",
    "within_response_limit",
]


class LambdaServiceError(StatesError):
    """The Lambda service refused the call (the function never ran): ``Lambda.*`` error names."""


class LambdaConfigurationError(ValueError):
    """A FunctionSpec or runtime option that cannot work; the message says what to change."""


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


def out_of_memory_payload(request_id: str) -> bytes:
    """A worker killed for passing its function's MemorySize (what Lambda reports of the kernel's kill)."""
    return _compact(
        [
            ("errorType", "Runtime.OutOfMemory"),
            ("errorMessage", f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"),
        ]
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


def within_response_limit(invocation: Invocation) -> Invocation:
    """The invocation as the caller gets it: a successful response past 6 MB becomes Lambda's error."""
    if invocation.function_error is None and len(invocation.payload) > MAX_RESPONSE_BYTES:
        return Invocation(response_too_large_payload(), "Unhandled", invocation.request_id)
    return invocation


def invalid_request_content(detail: str) -> LambdaServiceError:
    """Lambda's answer to a payload that is not JSON (the detail is Python's parser message, where
    AWS quotes its Java parser's)."""
    return LambdaServiceError(
        "Lambda.InvalidRequestContentException",
        f"Could not parse request body into json: Could not parse payload into json: {detail} "
        f"(Service: AWSLambda; Status Code: 400; Error Code: InvalidRequestContentException; "
        f"Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def resource_not_found(arn: str) -> LambdaServiceError:
    """Lambda's answer to an invocation of a function that does not exist (here: is not in the app)."""
    return LambdaServiceError(
        "Lambda.ResourceNotFoundException",
        f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
        f"ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def too_many_requests() -> LambdaServiceError:
    """Lambda's throttling answer (the handler does not run)."""
    return LambdaServiceError(
        "Lambda.TooManyRequestsException",
        f"Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: "
        f"TooManyRequestsException; Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def invocation_of_answer(message: bytes, request_id: str) -> Invocation:
    """A worker's answer as lambda:Invoke returns it (a payload that is not JSON raises, as the
    Lambda service refuses it)."""
    status, body = message[:1], message[1:]
    if status == lambda_worker.OK:
        return Invocation(body, None, request_id)
    if status == lambda_worker.BAD_REQUEST:
        raise invalid_request_content(body.decode("utf-8", "replace"))
    return Invocation(body, "Unhandled", request_id)
