"""A served Distributed Map while it runs and after: map runs whose counts move, the history AWS records,
StopExecution aborting the children, the children listed and described, and RedriveExecution rerunning
only the unsuccessful ones. Driven by boto3; ``CONTROLS`` holds, breaks and counts the server's handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from served_app import CONTROLS, MAPPER, NESTED, RESULTS_BUCKET, client
from test_stepfunctions_api import error_of, shaped, start, wait_until_ended

from burstmap.serve.endpoint import LocalEndpoint

AWS_CLI = str(Path(sys.executable).with_name("aws"))


@pytest.fixture(autouse=True)
def controls() -> Iterator[Any]:
    CONTROLS.reset()
    CONTROLS.gate.clear()
    yield CONTROLS
    CONTROLS.reset()


def eventually(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)
    return value


def aws_cli(sfn: Any, *args: str) -> Any:
    """``aws stepfunctions ARGS`` as a user runs it against the endpoint; its parsed output."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    command = [AWS_CLI, "stepfunctions", *args, "--endpoint-url", sfn.meta.endpoint_url, "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def only_map_run(sfn: Any, arn: str) -> dict[str, Any]:
    (run,) = eventually(lambda: sfn.list_map_runs(executionArn=arn)["mapRuns"])
    return shaped(sfn, "DescribeMapRun", sfn.describe_map_run(mapRunArn=run["mapRunArn"]))


def test_a_map_run_is_listed_and_its_counts_move_while_it_runs(sfn: Any, controls: Any) -> None:
    controls.held.update({1, 2})
    arn = start(sfn, MAPPER, {"items": [1, 2, 3, 4, 5, 6], "fail": False})
    running = eventually(lambda: (run := only_map_run(sfn, arn))["itemCounts"]["running"] == 2 and run)
    assert running["status"] == "RUNNING" and "stopDate" not in running
    assert (running["maxConcurrency"], running["toleratedFailureCount"]) == (4, 1)
    assert running["executionArn"] == arn and running["startDate"] >= sfn.describe_execution(
        executionArn=arn
    )["startDate"].replace(microsecond=0)
    assert running["itemCounts"]["total"] >= 2 and running["executionCounts"]["running"] == 2
    # The AWS CLI sees the same, while the run is held.
    listed = aws_cli(sfn, "list-map-runs", "--execution-arn", arn)["mapRuns"]
    assert [run["mapRunArn"] for run in listed] == [running["mapRunArn"]] and "stopDate" not in listed[0]
    described = aws_cli(sfn, "describe-map-run", "--map-run-arn", running["mapRunArn"])
    assert (described["status"], described["itemCounts"]["running"]) == ("RUNNING", 2)
    controls.gate.set()
    execution = wait_until_ended(sfn, arn)
    assert execution["status"] == "SUCCEEDED", execution
    ended = only_map_run(sfn, arn)
    assert ended["status"] == "SUCCEEDED" and ended["stopDate"] >= ended["startDate"]
    assert ended["itemCounts"]["succeeded"] == 6 and ended["itemCounts"]["resultsWritten"] == 6


def test_a_distributed_maps_history_has_its_map_run_and_no_children(sfn: Any) -> None:
    arn = start(sfn, MAPPER, {"items": [1, 2, 3], "fail": False})
    wait_until_ended(sfn, arn)
    events = shaped(sfn, "GetExecutionHistory", sfn.get_execution_history(executionArn=arn))["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in events] == list(range(1, 9))
    (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    assert events[3]["mapRunStartedEventDetails"] == {"mapRunArn": run["mapRunArn"]}
    assert events[2]["mapStateStartedEventDetails"] == {"length": 3}


def test_stop_execution_aborts_the_running_children_and_the_map_run(
    sfn: Any, endpoint: LocalEndpoint, controls: Any
) -> None:
    controls.held.update({3, 4})
    arn = start(sfn, MAPPER, {"items": [1, 2, 3, 4], "fail": False})
    eventually(lambda: (run := only_map_run(sfn, arn))["itemCounts"]["succeeded"] == 2 and run)
    sfn.stop_execution(executionArn=arn, error="Stop", cause="by the test")
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert endpoint.store.get(arn).wait(timeout=10), "the engine did not wind down"
    run = eventually(lambda: (run := only_map_run(sfn, arn))["status"] == "ABORTED" and run)
    assert (run["itemCounts"]["succeeded"], run["itemCounts"]["aborted"]) == (2, 2)
    assert run["executionCounts"]["aborted"] == 2 and run["itemCounts"]["running"] == 0
    events = eventually(
        lambda: (
            (events := sfn.get_execution_history(executionArn=arn)["events"])[-1]["type"]
            == "ExecutionAborted"
            and events
        )
    )
    assert [e["type"] for e in events][-2:] == ["MapRunAborted", "ExecutionAborted"]
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Stop", "cause": "by the test"}
    aborted = sfn.list_executions(mapRunArn=run["mapRunArn"], statusFilter="ABORTED")["executions"]
    assert len(aborted) == 2 and {child["status"] for child in aborted} == {"ABORTED"}


def test_the_children_are_listed_and_described(sfn: Any, controls: Any) -> None:
    controls.broken.add(2)
    arn = start(sfn, MAPPER, {"items": [1, 2, 3], "fail": False})
    wait_until_ended(sfn, arn)  # one failure is tolerated
    run = only_map_run(sfn, arn)
    children = shaped(sfn, "ListExecutions", sfn.list_executions(mapRunArn=run["mapRunArn"]))["executions"]
    assert len(children) == 3
    assert {child["stateMachineArn"] for child in children} == {f"{MAPPER.arn}/Each"}
    assert {child["mapRunArn"] for child in children} == {run["mapRunArn"]}
    assert sorted(child["status"] for child in children) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    pages = sfn.get_paginator("list_executions").paginate(
        mapRunArn=run["mapRunArn"], PaginationConfig={"PageSize": 2}
    )
    assert [c["executionArn"] for page in pages for c in page["executions"]] == [
        c["executionArn"] for c in children
    ]
    (failed,) = sfn.list_executions(mapRunArn=run["mapRunArn"], statusFilter="FAILED")["executions"]
    described = shaped(sfn, "DescribeExecution", sfn.describe_execution(executionArn=failed["executionArn"]))
    assert json.loads(described["input"]) == {"value": 2, "fail": False}
    assert (described["status"], described["error"], described["mapRunArn"]) == (
        "FAILED",
        "HandlerFailed",
        run["mapRunArn"],
    )
    assert described["redriveStatus"] == "NOT_REDRIVABLE" and arn in described["redriveStatusReason"]
    # The records the ResultWriter wrote name the same children.
    output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
    records = result_records_of(sfn, output)
    assert {r["ExecutionArn"] for r in records["FAILED"]} == {failed["executionArn"]}
    succeeded = next(c for c in children if c["status"] == "SUCCEEDED")
    shown = sfn.describe_execution(executionArn=succeeded["executionArn"])
    assert shown["status"] == "SUCCEEDED" and shown["inputDetails"] == {"included": False}
    assert "output" not in shown and shown["outputDetails"] == {"included": False}
    unknown = succeeded["executionArn"][:-12] + "ffffffffffff"
    assert error_of(lambda: sfn.describe_execution(executionArn=unknown))["Code"] == "ExecutionDoesNotExist"


def result_records_of(sfn: Any, output: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    s3 = client("s3", sfn.meta.endpoint_url)
    manifest = json.loads(
        s3.get_object(Bucket=RESULTS_BUCKET, Key=output["ResultWriterDetails"]["Key"])["Body"].read()
    )
    return {
        status: [
            record
            for entry in files
            for record in json.loads(s3.get_object(Bucket=RESULTS_BUCKET, Key=entry["Key"])["Body"].read())
        ]
        for status, files in manifest["ResultFiles"].items()
    }


def test_redrive_reruns_only_the_unsuccessful_children(sfn: Any, controls: Any) -> None:
    controls.broken.update({2, 5})
    items = [1, 2, 3, 4, 5, 6, 7, 8]
    arn = start(sfn, MAPPER, {"items": items, "fail": False})
    failed = wait_until_ended(sfn, arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert (failed["redriveStatus"], failed["redriveCount"]) == ("REDRIVABLE", 0)
    first_calls = dict(controls.calls)
    run_before = only_map_run(sfn, arn)
    pending = sfn.list_executions(mapRunArn=run_before["mapRunArn"], statusFilter="PENDING_REDRIVE")[
        "executions"
    ]
    assert {
        json.loads(sfn.describe_execution(executionArn=c["executionArn"])["input"])["value"] for c in pending
    } == {
        2,
        5,
    }

    controls.broken.clear()
    controls.calls.clear()
    redriven = shaped(sfn, "RedriveExecution", sfn.redrive_execution(executionArn=arn))
    ended = wait_until_ended(sfn, arn)
    assert ended["status"] == "SUCCEEDED", ended
    assert (ended["redriveCount"], ended["redriveDate"]) == (1, redriven["redriveDate"])
    rerun = set(controls.calls)
    assert rerun == {2, 5} | (set(items) - set(first_calls))  # the failed ones and those never started
    assert all(count == 1 for count in controls.calls.values())
    run = only_map_run(sfn, arn)
    assert run["mapRunArn"] == run_before["mapRunArn"] and run["redriveCount"] == 1
    assert run["status"] == "SUCCEEDED" and run["itemCounts"]["succeeded"] == len(items)
    records = result_records_of(sfn, json.loads(ended["output"]))
    assert sorted(json.loads(r["Output"])["value"] for r in records["SUCCEEDED"]) == [i * 2 for i in items]
    assert records["FAILED"] == [] and records["PENDING"] == []
    types = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    assert types[types.index("ExecutionFailed") :] == [
        "ExecutionFailed",
        "ExecutionRedriven",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunRedriven",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "NOT_REDRIVABLE"
    listed = sfn.list_executions(stateMachineArn=MAPPER.arn, redriveFilter="REDRIVEN")["executions"]
    assert arn in [item["executionArn"] for item in listed]


def test_a_stopped_execution_is_redriven_at_once_and_reruns_the_aborted_children(
    sfn: Any, controls: Any
) -> None:
    controls.held.update({3, 4})
    arn = start(sfn, MAPPER, {"items": [1, 2, 3, 4], "fail": False})
    eventually(lambda: (run := only_map_run(sfn, arn))["itemCounts"]["running"] == 2 and run)
    sfn.stop_execution(executionArn=arn)
    controls.held.clear()  # the reruns go through; the first attempts stay held (and are abandoned)
    sfn.redrive_execution(executionArn=arn)  # waits for the engine to report where it stopped
    ended = wait_until_ended(sfn, arn)
    assert (ended["status"], ended["redriveCount"]) == ("SUCCEEDED", 1)
    assert (controls.calls[1], controls.calls[2], controls.calls[3], controls.calls[4]) == (1, 1, 2, 2)
    run = only_map_run(sfn, arn)
    assert (run["status"], run["itemCounts"]["succeeded"], run["itemCounts"]["aborted"]) == (
        "SUCCEEDED",
        4,
        0,
    )


def test_a_map_nested_in_the_children_belongs_to_them(sfn: Any) -> None:
    arn = start(sfn, NESTED, {"groups": [[1, 2], [3]]})
    ended = wait_until_ended(sfn, arn)
    assert ended["status"] == "SUCCEEDED" and json.loads(ended["output"]) == [[2, 4], [6]]
    (outer,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]  # not the two inner ones
    assert outer["mapRunArn"].startswith(NESTED.arn.replace(":stateMachine:", ":mapRun:") + "/Groups:")
    children = sfn.list_executions(mapRunArn=outer["mapRunArn"])["executions"]
    assert len(children) == 2 and {child["status"] for child in children} == {"SUCCEEDED"}
