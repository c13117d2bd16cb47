"""The one Lambda-invoke implementation (burstmap.local.flow.lambda_invoke): the request a Task makes,
how a response becomes the result, and how refusals and handler errors are counted and named."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from burstmap.local.core.context import FakeClock, Services
from burstmap.local.core.errors import StateRuntimeError, StatesError
from burstmap.local.flow.lambda_invoke import (
    LambdaRequest,
    function_error,
    invoke,
    payload_bytes,
    response_payload,
)

ARN = "arn:aws:lambda:us-east-1:111111111111:function:f"
INVOKE = "arn:aws:states:::lambda:invoke"


@dataclass
class Answer:
    payload: bytes
    function_error: str | None = None
    request_id: str = "r-1"
    executed_version: str = "$LATEST"


def test_payload_is_compact_json_a_string_verbatim_and_nothing_an_empty_object() -> None:
    assert payload_bytes({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    assert payload_bytes("not json") == b"not json"
    assert payload_bytes(None) == b"{}"


def test_a_task_request_from_the_integration_or_a_function_arn() -> None:
    request = LambdaRequest.for_task(INVOKE, {"FunctionName": "f", "Payload": {"x": 1}})
    assert (request.function, request.payload, request.integration) == ("f", b'{"x":1}', True)
    request = LambdaRequest.for_task(ARN, {"x": 1})
    assert (request.function, request.payload, request.integration) == (ARN, b'{"x":1}', False)
    with pytest.raises(StateRuntimeError, match="must give FunctionName as a string"):
        LambdaRequest.for_task(INVOKE, {"FunctionName": 3})


def test_a_handler_error_is_named_by_its_error_type_and_the_integration_recompacts_the_cause() -> None:
    body = json.dumps({"errorMessage": "bad", "errorType": "ValueError"}).encode()
    assert function_error(body, integration=True).cause == '{"errorMessage":"bad","errorType":"ValueError"}'
    assert function_error(body, integration=False).cause == body.decode()
    assert function_error(b"not json", integration=True).error == "Lambda.Unknown"


def test_a_response_becomes_the_result_or_a_named_failure_counted_once() -> None:
    services = Services(runtime=None)
    assert response_payload(Answer(b'{"v":1}'), "f", integration=True, stats=services.stats) == {"v": 1}
    assert response_payload(Answer(b" "), "f", integration=True, stats=services.stats) is None
    with pytest.raises(StatesError, match="ValueError"):
        response_payload(
            Answer(b'{"errorType":"ValueError"}', "Unhandled"), "f", integration=True, stats=services.stats
        )
    with pytest.raises(StatesError, match="The state/task 'lambda' returned a result with a size exceeding"):
        response_payload(Answer(b'"' + b"x" * 262_144 + b'"'), "f", integration=True, stats=services.stats)
    with pytest.raises(StatesError, match=f"The state/task '{ARN}' returned"):
        response_payload(Answer(b'"' + b"x" * 262_144 + b'"'), ARN, integration=False, stats=services.stats)
    with pytest.raises(StatesError, match="returned a payload that is not JSON"):
        response_payload(Answer(b"{nope"), "f", integration=True, stats=services.stats)
    assert (
        services.stats.failures == 1
    )  # the handler error only: a size or JSON error is not a Lambda failure


class Throttled:
    def invoke(self, function: str, payload: bytes) -> Answer:
        raise StatesError("Lambda.TooManyRequestsException", "Rate Exceeded.")


class Slow:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def invoke(self, function: str, payload: bytes) -> Answer:
        self.clock.sleep(5)
        return Answer(b"1")


def test_a_refusal_counts_as_a_failure_and_a_throttle_and_a_timeout_is_states_timeout() -> None:
    services = Services(runtime=Throttled())
    with pytest.raises(StatesError, match="TooManyRequests"):
        invoke(services, "f", b"{}")
    assert (services.stats.invocations, services.stats.failures, services.stats.throttles) == (1, 1, 1)
    clock = FakeClock()
    services = Services(runtime=Slow(clock), clock=clock)
    with pytest.raises(StatesError) as timed_out:
        invoke(services, "f", b"{}", timeout=1)
    assert timed_out.value.error == "States.Timeout" and services.stats.failures == 1


@pytest.mark.parametrize("resource", [INVOKE, ARN])
def test_a_task_input_past_256_kib_after_parameters_fails_before_any_invocation(resource: str) -> None:
    """Error-handling guide, States.DataLimitExceeded: "When, after Parameters processing, the input of
    a state is larger than the payload size quota". Parameters that double the input make it so; the
    error is a state error (a Catch takes it) and the function never runs."""
    from tests.local.engine_support import chain, run

    doubled = "States.Format('{}{}', $.x, $.x)"
    parameters = (
        {"FunctionName": ARN, "Payload": {"x.$": doubled}} if resource == INVOKE else {"x.$": doubled}
    )
    task = {
        "Type": "Task",
        "Resource": resource,
        "Parameters": parameters,
        "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "ResultPath": "$.error", "Next": "Caught"}],
        "OutputPath": "$.Payload" if resource == INVOKE else "$",
        "End": True,
    }
    caught = {"Type": "Pass", "Parameters": {"error.$": "$.error.Error"}, "End": True}
    calls: list[object] = []

    def f(event: object) -> str:
        calls.append(event)
        return "ran"

    just_under = run(chain(("Work", task), ("Caught", caught)), {"x": "a" * (128 * 1024 - 100)}, f=f)
    assert just_under.output == "ran" and len(calls) == 1

    past = run(chain(("Work", task), ("Caught", caught)), {"x": "a" * (128 * 1024)}, f=f)
    assert past.output == {"error": "States.DataLimitExceeded"} and len(calls) == 1
