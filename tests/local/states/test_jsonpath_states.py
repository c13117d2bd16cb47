"""The states in JSONPath (Task, Pass, Wait, Fail, Succeed, Parallel, inline Map) and the context object."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from burstmap.local import FakeClock, execute
from tests.local.engine_support import ARN, one, run


def test_lambda_invoke_returns_the_response_envelope() -> None:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
    }
    result = run(one(state), {"x": 1})
    assert result.status == "SUCCEEDED"
    envelope = result.output
    assert envelope["Payload"] == {"x": 1}
    assert envelope["StatusCode"] == 200 and envelope["ExecutedVersion"] == "$LATEST"
    assert envelope["SdkResponseMetadata"] == {"RequestId": "request-1"}
    assert envelope["SdkHttpMetadata"]["HttpHeaders"]["Content-Length"] == str(len(json.dumps({"x": 1})))


def test_lambda_invoke_sends_a_string_payload_verbatim_and_null_as_empty_object() -> None:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "echo", "Payload.$": "$.p"},
        "OutputPath": "$.Payload",
    }
    assert run(one(state), {"p": "[1, 2]"}).output == [1, 2]
    assert run(one(state), {"p": None}).output == {}


def test_direct_arn_returns_the_payload_and_function_errors_keep_the_runtime_text() -> None:
    assert run(one({"Type": "Task", "Resource": ARN}), "text").output == "text"

    def boom(event: Any) -> Any:
        raise KeyError("k")

    direct = run(one({"Type": "Task", "Resource": ARN}), {}, echo=boom)
    assert direct.error == "KeyError"
    assert direct.cause.startswith('{"errorMessage": ')  # the runtime's separators
    invoke = run(
        one(
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo"},
            }
        ),
        {},
        echo=boom,
    )
    assert invoke.cause.startswith('{"errorMessage":"')  # re-serialised compactly
    assert json.loads(invoke.cause) == json.loads(direct.cause)


def test_a_result_past_256_kib_is_data_limit_exceeded() -> None:
    result = run(one({"Type": "Task", "Resource": ARN}), {}, echo=lambda event: b"a" * (256 * 1024 + 1))
    assert result.error == "States.DataLimitExceeded"
    assert result.cause == (
        f"The state/task '{ARN}' returned a result with a size exceeding the maximum "
        "number of bytes service limit."
    )


def test_unknown_function_is_resource_not_found() -> None:
    result = run(one({"Type": "Task", "Resource": ARN.replace("echo", "nope")}))
    assert result.error == "Lambda.ResourceNotFoundException"


def test_result_selector_then_result_path_then_output_path() -> None:
    state = {
        "Type": "Task",
        "Resource": ARN,
        "ResultSelector": {"got.$": "$.v"},
        "ResultPath": "$.r",
        "OutputPath": "$.r",
    }
    assert run(one(state), {"v": 7}).output == {"got": 7}


def test_pass_result_is_literal_and_parameters_are_resolved() -> None:
    assert run(one({"Type": "Pass", "Result": {"k.$": "$.x"}}), {"x": 1}).output == {"k.$": "$.x"}
    assert run(one({"Type": "Pass", "Parameters": {"k.$": "$.x"}}), {"x": 1}).output == {"k": 1}


def test_output_past_256_kib_fails_the_state() -> None:
    result = run(one({"Type": "Pass", "Result": "a" * (256 * 1024)}))
    assert result.error == "States.DataLimitExceeded"


def test_wait_seconds_and_past_timestamp_go_through_the_clock() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    execute(one({"Type": "Wait", "Seconds": 10}), {}, clock=clock)
    execute(one({"Type": "Wait", "Timestamp": "2024-01-01T00:01:10Z"}), {}, clock=clock)
    execute(one({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z"}), {}, clock=clock)
    assert clock.sleeps == [10, 60, 0]


def test_wait_seconds_path_refuses_negative_and_fractional_values() -> None:
    state = one({"Type": "Wait", "SecondsPath": "$.s"})
    negative = execute(state, {"s": -1}, clock=FakeClock())
    assert negative.error == "States.Runtime"
    assert negative.cause.endswith("The SecondsPath parameter references a negative value: $.s == -1")
    assert execute(state, {"s": 1.5}, clock=FakeClock()).cause.endswith(
        "cannot be parsed as a long value: $.s == 1.5"
    )


def test_wait_timestamp_path_needs_an_offset_date_time() -> None:
    state = one({"Type": "Wait", "TimestampPath": "$.t"})
    assert execute(state, {"t": "2016-03-05T21:29:29.243167252Z"}, clock=FakeClock()).status == "SUCCEEDED"
    bad = execute(state, {"t": "2016-12-05T21:29:29"}, clock=FakeClock())
    assert bad.cause.endswith("ISO-8601 extended offset date-time format string: $.t == 2016-12-05T21:29:29")


def test_fail_with_paths_and_without_fields() -> None:
    failed = run(
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}},
        {"e": "E", "c": "C"},
    )
    assert (failed.status, failed.error, failed.cause) == ("FAILED", "E", "C")
    empty = run({"StartAt": "F", "States": {"F": {"Type": "Fail"}}})
    assert (empty.status, empty.error, empty.cause) == ("FAILED", None, None)


def _branch(result: Any) -> dict[str, Any]:
    return {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": result, "End": True}}}


def test_parallel_outputs_follow_branch_order_and_a_failing_branch_fails_the_state() -> None:
    assert run(one({"Type": "Parallel", "Branches": [_branch(i) for i in range(5)]})).output == [
        0,
        1,
        2,
        3,
        4,
    ]
    failing = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}}
    result = run(one({"Type": "Parallel", "Branches": [_branch(0), failing]}))
    assert (result.error, result.cause) == ("Bad", "why")


def test_inline_map_item_selector_sees_the_map_input_and_the_item() -> None:
    state = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "MaxConcurrency": 2,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "tag.$": "$.tag"},
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ARN, "End": True}}},
    }
    result = run(one(state), {"items": ["a", "b", "c"], "tag": "t"})
    assert result.output == [
        {"v": "a", "i": 0, "tag": "t"},
        {"v": "b", "i": 1, "tag": "t"},
        {"v": "c", "i": 2, "tag": "t"},
    ]


def test_inline_map_items_must_be_an_array() -> None:
    state = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    assert run(one(state), {"items": {"a": 1}}).error == "States.Runtime"


def test_context_object_fields() -> None:
    state = {"Type": "Pass", "Parameters": {"c.$": "$$"}}
    result = execute(one(state), {"in": 1}, clock=FakeClock(), name="exec-1", state_machine_name="sm")
    context = result.output["c"]
    assert context["Execution"]["Id"] == "arn:aws:states:us-east-1:111111111111:execution:sm:exec-1"
    assert context["Execution"]["Input"] == {"in": 1} and context["Execution"]["RedriveCount"] == 0
    assert context["StateMachine"] == {
        "Id": "arn:aws:states:us-east-1:111111111111:stateMachine:sm",
        "Name": "sm",
    }
    assert set(context["State"]) == {"Name", "EnteredTime"} and context["State"]["Name"] == "S"
    assert "Task" not in context
