"""The Step Functions API of ``burstmap serve``, driven by boto3 exactly as a user's code drives AWS.

Every response is parsed by botocore (so it must be shaped as the service model says) and checked
against the operation's output shape; every error is checked for AWS's code and message.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import pytest
from botocore.validate import ParamValidator
from served_app import (
    BRANCHES,
    DOUBLE,
    EXPRESS,
    MAPPER,
    RESULTS_BUCKET,
    ROLE_ARN,
    UNSUPPORTED,
    WAITER,
    client,
    machine_arn,
)

from burstmap.serve.endpoint import LocalEndpoint

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def shaped(sfn: Any, operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """``response`` (botocore-parsed) after checking it has every required member of the output shape."""
    shape = sfn.meta.service_model.operation_model(operation).output_shape
    body = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), report.generate_report()
    return body


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return raised.value.response["Error"]


def wait_until_ended(sfn: Any, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] in TERMINAL:
            return shaped(sfn, "DescribeExecution", description)
        assert time.monotonic() < deadline, f"{arn} still {description['status']} after {timeout} s"
        time.sleep(0.05)


def start(sfn: Any, machine: Any, execution_input: Any, **kwargs: Any) -> str:
    return sfn.start_execution(stateMachineArn=machine.arn, input=json.dumps(execution_input), **kwargs)[
        "executionArn"
    ]


# ------------------------------------------------------------------------------------ state machines


def test_list_state_machines_lists_every_served_machine_in_pages(sfn: Any) -> None:
    listed = shaped(sfn, "ListStateMachines", sfn.list_state_machines())["stateMachines"]
    assert [(m["name"], m["type"]) for m in listed] == [
        ("Branches", "STANDARD"),
        ("Double", "STANDARD"),
        ("Express", "EXPRESS"),
        ("Mapper", "STANDARD"),
        ("Nested", "STANDARD"),
        ("Unsupported", "STANDARD"),
        ("Waiter", "STANDARD"),
    ]
    first = sfn.list_state_machines(maxResults=2)
    assert len(first["stateMachines"]) == 2 and "nextToken" in first
    pages = sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2})
    assert [m["stateMachineArn"] for page in pages for m in page["stateMachines"]] == [
        m["stateMachineArn"] for m in listed
    ]


def test_describe_state_machine_returns_the_definition_role_and_type(sfn: Any) -> None:
    described = shaped(sfn, "DescribeStateMachine", sfn.describe_state_machine(stateMachineArn=MAPPER.arn))
    assert json.loads(described["definition"]) == MAPPER.definition
    assert (described["name"], described["roleArn"], described["type"], described["status"]) == (
        "Mapper",
        ROLE_ARN,
        "STANDARD",
        "ACTIVE",
    )


def test_an_unknown_state_machine_is_state_machine_does_not_exist(sfn: Any) -> None:
    arn = machine_arn("Nope")
    assert error_of(lambda: sfn.describe_state_machine(stateMachineArn=arn)) == {
        "Code": "StateMachineDoesNotExist",
        "Message": f"State Machine Does Not Exist: '{arn}'",
    }
    assert error_of(lambda: sfn.start_execution(stateMachineArn=arn))["Code"] == "StateMachineDoesNotExist"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda sfn: sfn.describe_execution(executionArn="job-1"),
            "Invalid Arn: 'Invalid ARN prefix: job-1'",
        ),
        (
            lambda sfn: sfn.describe_execution(executionArn=DOUBLE.arn),
            "Invalid Arn: 'Resource type not valid in this context: stateMachine'",
        ),
        (
            lambda sfn: sfn.describe_state_machine(
                stateMachineArn=DOUBLE.arn.replace("stateMachine", "execution") + ":x"
            ),
            "Invalid Arn: 'Resource type not valid in this context: execution'",
        ),
    ],
)
def test_malformed_or_misplaced_arns_are_invalid_arn(sfn: Any, call: Any, message: str) -> None:
    assert error_of(lambda: call(sfn)) == {"Code": "InvalidArn", "Message": message}


# ------------------------------------------------------------------------------------ executions


def test_an_execution_runs_in_the_background_running_then_succeeded(sfn: Any) -> None:
    arn = start(sfn, WAITER, {"seconds": 1})
    running = shaped(sfn, "DescribeExecution", sfn.describe_execution(executionArn=arn))
    assert running["status"] == "RUNNING" and "stopDate" not in running and "output" not in running
    assert running["redriveStatus"] == "NOT_REDRIVABLE"
    assert running["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
    ended = wait_until_ended(sfn, arn)
    assert ended["status"] == "SUCCEEDED"
    assert json.loads(ended["output"]) == {"seconds": 1}
    assert ended["stopDate"] >= ended["startDate"]


def test_the_output_is_the_handlers_result(sfn: Any) -> None:
    arn = start(sfn, DOUBLE, {"value": 21}, name="double-21")
    assert arn == DOUBLE.arn.replace(":stateMachine:", ":execution:") + ":double-21"
    ended = wait_until_ended(sfn, arn)
    assert (ended["status"], json.loads(ended["output"]), ended["name"]) == (
        "SUCCEEDED",
        {"value": 42},
        "double-21",
    )
    assert ended["inputDetails"] == {"included": True} and json.loads(ended["input"]) == {"value": 21}


def test_metadata_only_leaves_the_input_and_output_out(sfn: Any) -> None:
    arn = start(sfn, DOUBLE, {"value": 7})
    wait_until_ended(sfn, arn)
    metadata = shaped(
        sfn, "DescribeExecution", sfn.describe_execution(executionArn=arn, includedData="METADATA_ONLY")
    )
    assert metadata["status"] == "SUCCEEDED" and metadata["name"] == arn.rsplit(":", 1)[1]
    assert not {"input", "inputDetails", "output", "outputDetails"} & set(metadata)


def test_a_failed_execution_has_the_handlers_error_and_cause(sfn: Any) -> None:
    ended = wait_until_ended(sfn, start(sfn, DOUBLE, {"value": 3, "fail": True}))
    assert (ended["status"], ended["error"]) == ("FAILED", "HandlerFailed")
    assert json.loads(ended["cause"])["errorMessage"] == "asked to fail: 3"
    assert "output" not in ended


def test_executions_run_concurrently(sfn: Any) -> None:
    started = time.monotonic()
    arns = [start(sfn, WAITER, {"seconds": 1}) for _ in range(4)]
    assert {sfn.describe_execution(executionArn=arn)["status"] for arn in arns} == {"RUNNING"}
    assert {wait_until_ended(sfn, arn)["status"] for arn in arns} == {"SUCCEEDED"}
    assert time.monotonic() - started < 3.5  # four 1 s waits, side by side


def test_start_execution_is_idempotent_for_the_same_name_and_input_while_running(sfn: Any) -> None:
    first = sfn.start_execution(stateMachineArn=WAITER.arn, name="twice", input='{"seconds": 1}')
    again = sfn.start_execution(stateMachineArn=WAITER.arn, name="twice", input='{"seconds": 1}')
    assert (again["executionArn"], again["startDate"]) == (first["executionArn"], first["startDate"])
    different = error_of(
        lambda: sfn.start_execution(stateMachineArn=WAITER.arn, name="twice", input='{"seconds": 2}')
    )
    assert different == {
        "Code": "ExecutionAlreadyExists",
        "Message": f"Execution Already Exists: '{first['executionArn']}'",
    }
    wait_until_ended(sfn, first["executionArn"])
    closed = error_of(
        lambda: sfn.start_execution(stateMachineArn=WAITER.arn, name="twice", input='{"seconds": 1}')
    )
    assert (
        closed["Code"] == "ExecutionAlreadyExists"
    )  # a closed execution's name is taken, whatever the input


def test_bad_input_name_and_parameters_are_refused_with_awss_codes(sfn: Any) -> None:
    bad_json = error_of(lambda: sfn.start_execution(stateMachineArn=DOUBLE.arn, input="{size: 1}"))
    assert bad_json["Code"] == "InvalidExecutionInput"
    assert bad_json["Message"].startswith("Invalid State Machine Execution Input: ")
    assert error_of(lambda: sfn.start_execution(stateMachineArn=DOUBLE.arn, name="a b")) == {
        "Code": "InvalidName",
        "Message": "Invalid Name: 'a b'",
    }
    too_many = error_of(lambda: sfn.list_executions(stateMachineArn=DOUBLE.arn, maxResults=1001))
    assert too_many == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000",
    }
    long_name = error_of(lambda: sfn.start_execution(stateMachineArn=DOUBLE.arn, name="n" * 81))
    assert long_name["Code"] == "ValidationException" and "at 'name'" in long_name["Message"]


def test_list_executions_is_newest_first_filtered_and_paged(sfn: Any) -> None:
    arns = []
    for i in range(3):  # one after the other, so they end in this order
        arns.append(start(sfn, DOUBLE, {"value": i, "fail": i == 1}))
        wait_until_ended(sfn, arns[-1])
    listed = shaped(sfn, "ListExecutions", sfn.list_executions(stateMachineArn=DOUBLE.arn))["executions"]
    ours = [item["executionArn"] for item in listed if item["executionArn"] in arns]
    assert ours == arns[::-1]  # ended one after the other: the last to stop comes first
    stops = [item["stopDate"] for item in listed]
    assert stops == sorted(stops, reverse=True)
    failed = sfn.list_executions(stateMachineArn=DOUBLE.arn, statusFilter="FAILED")["executions"]
    assert arns[1] in [item["executionArn"] for item in failed]
    assert {item["status"] for item in failed} == {"FAILED"}
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=DOUBLE.arn, PaginationConfig={"PageSize": 1}
    )
    assert [item["executionArn"] for page in pages for item in page["executions"]] == [
        item["executionArn"] for item in listed
    ]
    token = sfn.list_executions(stateMachineArn=DOUBLE.arn, maxResults=1)["nextToken"]
    elsewhere = error_of(lambda: sfn.list_executions(stateMachineArn=WAITER.arn, nextToken=token))
    assert elsewhere == {"Code": "InvalidToken", "Message": f"Invalid Token: '{token}'"}


def test_describe_state_machine_for_execution(sfn: Any) -> None:
    arn = start(sfn, DOUBLE, {"value": 1})
    described = shaped(
        sfn, "DescribeStateMachineForExecution", sfn.describe_state_machine_for_execution(executionArn=arn)
    )
    assert (described["stateMachineArn"], described["roleArn"]) == (DOUBLE.arn, ROLE_ARN)
    assert json.loads(described["definition"]) == DOUBLE.definition


def test_an_unknown_execution_is_execution_does_not_exist(sfn: Any) -> None:
    arn = DOUBLE.arn.replace(":stateMachine:", ":execution:") + ":never-started"
    for call in (
        lambda: sfn.describe_execution(executionArn=arn),
        lambda: sfn.stop_execution(executionArn=arn),
        lambda: sfn.get_execution_history(executionArn=arn),
        lambda: sfn.list_map_runs(executionArn=arn),
        lambda: sfn.redrive_execution(executionArn=arn),
    ):
        assert error_of(call) == {
            "Code": "ExecutionDoesNotExist",
            "Message": f"Execution Does Not Exist: '{arn}'",
        }


# ------------------------------------------------------------------------------------ stop


def test_stop_execution_aborts_at_once_and_the_run_winds_down(sfn: Any, endpoint: LocalEndpoint) -> None:
    arn = start(sfn, WAITER, {"seconds": 60})
    stopped = shaped(
        sfn, "StopExecution", sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by test")
    )
    described = wait_until_ended(sfn, arn, timeout=1)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Cancelled",
        "by test",
    )
    assert described["stopDate"] == stopped["stopDate"]
    record = endpoint.store.get(arn)
    assert record is not None and record.wait(timeout=5)  # the engine's Wait was cut short, not served out
    last = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"][0]
    assert last["type"] == "ExecutionAborted" and last["previousEventId"] == 0
    assert last["executionAbortedEventDetails"] == {"error": "Cancelled", "cause": "by test"}
    again = sfn.stop_execution(executionArn=arn)  # an ended execution keeps its end
    assert again["stopDate"] == stopped["stopDate"]


def test_stop_without_error_or_cause_leaves_them_out(sfn: Any) -> None:
    arn = start(sfn, WAITER, {"seconds": 60})
    sfn.stop_execution(executionArn=arn)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED" and "error" not in described and "cause" not in described
    last = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"][0]
    assert last["executionAbortedEventDetails"] == {}


# ------------------------------------------------------------------------------------ history


def test_history_has_ids_timestamps_and_pages(sfn: Any) -> None:
    arn = start(sfn, DOUBLE, {"value": 5})
    wait_until_ended(sfn, arn)
    events = shaped(sfn, "GetExecutionHistory", sfn.get_execution_history(executionArn=arn))["events"]
    assert [(e["type"], e["id"], e["previousEventId"]) for e in events] == [
        ("ExecutionStarted", 1, 0),
        ("TaskStateEntered", 2, 0),
        ("TaskScheduled", 3, 2),
        ("TaskStarted", 4, 3),
        ("TaskSucceeded", 5, 4),
        ("TaskStateExited", 6, 5),
        ("ExecutionSucceeded", 7, 6),
    ]
    assert events[0]["executionStartedEventDetails"] == {
        "input": '{"value": 5}',
        "inputDetails": {"truncated": False},
        "roleArn": ROLE_ARN,
    }
    assert events[1]["stateEnteredEventDetails"] == {
        "name": "Double",
        "input": '{"value":5}',
        "inputDetails": {"truncated": False},
    }
    scheduled = events[2]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"]) == ("lambda", "invoke")
    assert json.loads(scheduled["parameters"]) == {"FunctionName": "compute", "Payload": {"value": 5}}
    assert json.loads(events[4]["taskSucceededEventDetails"]["output"])["Payload"] == {"value": 10}
    assert json.loads(events[6]["executionSucceededEventDetails"]["output"]) == {"value": 10}
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    without_data = sfn.get_execution_history(executionArn=arn, includeExecutionData=False)["events"]
    assert "input" not in without_data[0]["executionStartedEventDetails"]
    assert "input" not in without_data[1]["stateEnteredEventDetails"]
    assert "output" not in without_data[6]["executionSucceededEventDetails"]
    paged = sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, reverseOrder=True, PaginationConfig={"PageSize": 2}
    )
    assert [e["id"] for page in paged for e in page["events"]] == [7, 6, 5, 4, 3, 2, 1]


def test_a_failed_tasks_history_names_the_error_and_ends_failed(sfn: Any) -> None:
    arn = start(sfn, DOUBLE, {"value": 3, "fail": True})
    wait_until_ended(sfn, arn)
    events = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "ExecutionFailed",
    ]
    assert events[4]["taskFailedEventDetails"]["error"] == "HandlerFailed"
    assert events[5]["previousEventId"] == 5


# ------------------------------------------------------------------------------------ map runs


def test_a_distributed_maps_run_is_listed_and_described(sfn: Any, endpoint: LocalEndpoint) -> None:
    arn = start(sfn, MAPPER, {"items": [1, 2, 3, 4, 5], "fail": False})
    ended = wait_until_ended(sfn, arn)
    assert ended["status"] == "SUCCEEDED"
    runs = shaped(sfn, "ListMapRuns", sfn.list_map_runs(executionArn=arn))["mapRuns"]
    assert len(runs) == 1
    run_arn = runs[0]["mapRunArn"]
    assert run_arn.startswith("arn:aws:states:us-east-1:111111111111:mapRun:Mapper/Each:")
    assert runs[0]["stateMachineArn"] == f"{MAPPER.arn}/Each" and runs[0]["executionArn"] == arn
    described = shaped(sfn, "DescribeMapRun", sfn.describe_map_run(mapRunArn=run_arn))
    assert described["status"] == "SUCCEEDED"
    assert (described["maxConcurrency"], described["toleratedFailureCount"]) == (4, 1)
    assert described["itemCounts"]["total"] == 5 and described["itemCounts"]["succeeded"] == 5
    assert described["executionCounts"]["succeeded"] == 5
    # The ResultWriter wrote under the map run's id, which the execution output names too.
    output = json.loads(ended["output"])
    assert output["MapRunArn"] == run_arn
    s3 = client("s3", endpoint.url)
    manifest = json.loads(
        s3.get_object(Bucket=RESULTS_BUCKET, Key=output["ResultWriterDetails"]["Key"])["Body"].read()
    )
    assert manifest["MapRunArn"] == run_arn


def test_a_failed_map_run_counts_its_failed_items(sfn: Any) -> None:
    arn = start(sfn, MAPPER, {"items": [1, 2, 3], "fail": True})
    assert wait_until_ended(sfn, arn)["error"] == "States.ExceedToleratedFailureThreshold"
    (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=run["mapRunArn"])
    assert described["status"] == "FAILED" and described["itemCounts"]["failed"] >= 2


def test_an_unknown_map_run_is_resource_not_found(sfn: Any) -> None:
    arn = f"{MAPPER.arn.replace(':stateMachine:', ':mapRun:')}/Each:00000000-0000-0000-0000-000000000000"
    assert error_of(lambda: sfn.describe_map_run(mapRunArn=arn)) == {
        "Code": "ResourceNotFound",
        "Message": f"Resource not found: '{arn}'",
    }
    assert error_of(lambda: sfn.describe_map_run(mapRunArn=MAPPER.arn))["Code"] == "InvalidArn"


# ------------------------------------------------------------------------------------ redrive


def test_redrive_refuses_a_running_or_succeeded_execution_as_aws_does(sfn: Any) -> None:
    running = start(sfn, WAITER, {"seconds": 1})
    assert error_of(lambda: sfn.redrive_execution(executionArn=running)) == {
        "Code": "ExecutionNotRedrivable",
        "Message": "Execution is RUNNING and cannot be redriven",
    }
    wait_until_ended(sfn, running)
    assert error_of(lambda: sfn.redrive_execution(executionArn=running)) == {
        "Code": "ExecutionNotRedrivable",
        "Message": "Execution is SUCCEEDED and cannot be redriven",
    }


def test_a_redrive_the_engine_cannot_do_as_aws_does_is_refused_with_the_reason(sfn: Any) -> None:
    arn = start(sfn, BRANCHES, {})
    described = wait_until_ended(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert described["redriveStatusReason"].startswith(
        "not supported locally: redriving from the Parallel state 'Both'"
    )
    refused = error_of(lambda: sfn.redrive_execution(executionArn=arn))
    assert refused == {"Code": "ExecutionNotRedrivable", "Message": described["redriveStatusReason"]}
    assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"  # nothing half-done


# ------------------------------------------------------------------------------------ express


def test_start_sync_execution_runs_an_express_machine_and_answers_with_its_end(
    endpoint: LocalEndpoint,
) -> None:
    # botocore puts "sync-" before the host of StartSyncExecution; a local endpoint has no such name.
    sync = client("stepfunctions", endpoint.url, inject_host_prefix=False)
    ended = shaped(
        sync,
        "StartSyncExecution",
        sync.start_sync_execution(stateMachineArn=EXPRESS.arn, input='{"value": 4}'),
    )
    assert (ended["status"], json.loads(ended["output"])) == ("SUCCEEDED", {"value": 8})
    assert ended["executionArn"].startswith(EXPRESS.arn.replace(":stateMachine:", ":express:") + ":")
    failed = sync.start_sync_execution(stateMachineArn=EXPRESS.arn, input='{"value": 4, "fail": true}')
    assert (failed["status"], failed["error"]) == ("FAILED", "HandlerFailed")  # a 200 all the same
    assert error_of(lambda: sync.start_sync_execution(stateMachineArn=DOUBLE.arn))["Code"] == (
        "StateMachineTypeNotSupported"
    )
    # AWS records no EXPRESS execution: DescribeExecution refuses its ARN, ListExecutions the machine.
    described = error_of(lambda: sync.describe_execution(executionArn=ended["executionArn"]))
    assert described == {
        "Code": "InvalidArn",
        "Message": "Invalid Arn: 'Resource type not valid in this context: express'",
    }
    assert error_of(lambda: sync.list_executions(stateMachineArn=EXPRESS.arn))["Code"] == (
        "StateMachineTypeNotSupported"
    )


# ------------------------------------------------------------------------------------ refusals


def test_a_machine_the_engine_cannot_run_is_refused_by_name(sfn: Any) -> None:
    refused = error_of(lambda: sfn.start_execution(stateMachineArn=UNSUPPORTED.arn))
    assert refused["Code"] == "ValidationException"
    assert refused["Message"].startswith("not supported locally: ") and "Poll" in refused["Message"]
    assert sfn.describe_state_machine(stateMachineArn=UNSUPPORTED.arn)["name"] == "Unsupported"


def test_operations_it_does_not_serve_are_refused_by_name(sfn: Any) -> None:
    refused = error_of(lambda: sfn.create_state_machine(name="x", definition="{}", roleArn=ROLE_ARN))
    assert refused["Code"] == "UnknownOperationException"
    assert refused["Message"].startswith(
        "not supported locally: burstmap serve does not implement CreateStateMachine"
    )


def test_raw_requests_get_protocol_errors(endpoint: LocalEndpoint) -> None:
    """What no SDK sends, a hand-written client might: a body that is not JSON, an unknown target."""
    parts = urlsplit(endpoint.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def post(target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        connection.request(
            "POST", "/", body, {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    assert post("AWSStepFunctions.ListStateMachines", b"not json")[1]["__type"] == "SerializationException"
    status, body = post("AWSStepFunctions.DescribeExecution", b"{}")
    assert (status, body["__type"]) == (400, "ValidationException")
    assert "executionArn" in body["message"]
    assert post("DynamoDB_20120810.GetItem", b"{}")[1]["__type"] == "UnknownOperationException"
    connection.close()


def test_clients_find_the_endpoint_through_aws_endpoint_url(
    endpoint: LocalEndpoint, monkeypatch: Any
) -> None:
    """As a new process's clients would: a fresh session reads the variables. The service-specific one
    is named after the service id, SFN (AWS_ENDPOINT_URL_STEPFUNCTIONS is not read by botocore)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    plain = boto3.session.Session().client("stepfunctions", region_name="us-east-1")
    assert DOUBLE.arn in [m["stateMachineArn"] for m in plain.list_state_machines()["stateMachines"]]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", endpoint.url)
    specific = boto3.session.Session().client("stepfunctions", region_name="us-east-1")
    assert specific.describe_state_machine(stateMachineArn=DOUBLE.arn)["name"] == "Double"


def test_the_aws_cli_starts_a_sync_execution_without_the_sync_host_prefix(endpoint: LocalEndpoint) -> None:
    """What `burstmap serve` tells AWS CLI users of EXPRESS machines to set."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_DISABLE_HOST_PREFIX_INJECTION": "true"}
    command = [
        str(Path(sys.executable).with_name("aws")),
        "stepfunctions",
        "start-sync-execution",
        "--state-machine-arn",
        EXPRESS.arn,
        "--input",
        '{"value": 50}',
        "--endpoint-url",
        endpoint.url,
        "--output",
        "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    answered = json.loads(result.stdout)
    assert (answered["status"], json.loads(answered["output"])) == ("SUCCEEDED", {"value": 100})
