"""The wire layer alone: validation against botocore's input shapes, rendering from its output shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.parsers import create_parser

from burstmap.serve.wire import (
    ApiError,
    operation,
    parse_json_request,
    parse_query_request,
    render_json,
    render_xml,
    service_model,
    xml_error,
)

SFN = service_model("stepfunctions")
CLOUDFORMATION = service_model("cloudformation")


def refusal(call: object) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_a_request_missing_a_required_member_names_it() -> None:
    error = refusal(lambda: parse_json_request(operation(SFN, "DescribeExecution"), b"{}"))
    assert error.code == "ValidationException"
    assert 'Missing required parameter in input: "executionArn"' in error.message


def test_a_member_of_the_wrong_type_or_unknown_to_the_model_is_named() -> None:
    op = operation(SFN, "ListExecutions")
    wrong = refusal(lambda: parse_json_request(op, b'{"stateMachineArn": "a", "maxResults": "ten"}'))
    assert "maxResults" in wrong.message
    unknown = refusal(lambda: parse_json_request(op, b'{"stateMachineArn": "a", "colour": 1}'))
    assert 'Unknown parameter in input: "colour"' in unknown.message


def test_constraints_the_client_leaves_to_the_server_are_checked_in_awss_words() -> None:
    op = operation(SFN, "ListExecutions")
    error = refusal(lambda: parse_json_request(op, b'{"stateMachineArn": "a", "statusFilter": "DONE"}'))
    assert error.message == (
        "1 validation error detected: Value 'DONE' at 'statusFilter' failed to satisfy constraint: Member "
        "must satisfy enum value set: [RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE]"
    )
    two = refusal(
        lambda: parse_json_request(
            op, json.dumps({"stateMachineArn": "a" * 257, "maxResults": 1001}).encode()
        )
    )
    assert two.message.startswith("2 validation errors detected: ")


def test_a_body_that_is_not_a_json_object_is_a_serialization_exception() -> None:
    op = operation(SFN, "ListStateMachines")
    assert refusal(lambda: parse_json_request(op, b"[1]")).code == "SerializationException"
    assert refusal(lambda: parse_json_request(op, b"{")).code == "SerializationException"


def test_json_responses_carry_model_members_only_and_timestamps_as_epoch_seconds() -> None:
    op = operation(SFN, "StartExecution")
    moment = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=timezone(timedelta(hours=2)))
    body = render_json(op.output_shape, {"executionArn": "arn", "startDate": moment})
    assert json.loads(body) == {"executionArn": "arn", "startDate": moment.timestamp()}
    with pytest.raises(ValueError, match="has no member"):
        render_json(op.output_shape, {"executionArn": "arn", "startDate": moment, "extra": 1})


def test_xml_responses_parse_with_botocores_own_query_parser() -> None:
    op = operation(CLOUDFORMATION, "DescribeStacks")
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = render_xml(
        CLOUDFORMATION,
        op,
        {
            "Stacks": [
                {
                    "StackName": "S & <T>",
                    "CreationTime": created,
                    "StackStatus": "CREATE_COMPLETE",
                    "DisableRollback": False,
                    "Outputs": [{"OutputKey": "K", "OutputValue": "v"}],
                }
            ]
        },
    )
    parsed = create_parser("query").parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
    (stack,) = parsed["Stacks"]
    assert (stack["StackName"], stack["CreationTime"], stack["DisableRollback"]) == (
        "S & <T>",
        created,
        False,
    )
    assert stack["Outputs"] == [{"OutputKey": "K", "OutputValue": "v"}]


def test_query_requests_and_errors() -> None:
    op, params = parse_query_request(CLOUDFORMATION, b"Action=DescribeStacks&Version=2010-05-15&StackName=S")
    assert (op.name, params) == ("DescribeStacks", {"StackName": "S"})
    assert refusal(lambda: parse_query_request(CLOUDFORMATION, b"Action=Teleport")).code == "InvalidAction"
    reply = xml_error(CLOUDFORMATION, ApiError("ValidationError", "Stack with id S does not exist"))
    parsed = create_parser("query").parse(
        {"body": reply.body, "headers": reply.headers, "status_code": reply.status}, None
    )
    assert parsed["Error"]["Code"] == "ValidationError"
    assert parsed["Error"]["Message"] == "Stack with id S does not exist"
