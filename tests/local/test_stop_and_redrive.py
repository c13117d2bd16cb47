"""Stopping and redriving executions (execute(cancellation=...), ExecutionResult.redrive_point,
execute(redrive=...)), and map runs as they run (execute(on_map_run=...), keep_child_records)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from burstmap.local import Cancellation, NotRedrivable, RedrivePoint, execute
from tests.local.engine_support import chain
from tests.local.fake_lambda import FakeRuntime

INVOKE = "arn:aws:states:::lambda:invoke"
BUCKET = "redrive-results"


def task(function: str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": INVOKE,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **fields,
    }


def fan_out(processor_states: dict[str, Any], start: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": start,
                    "States": processor_states,
                },
                "End": True,
                **fields,
            }
        },
    }


WRITER = {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "out"}}


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def manifest_records(s3: Any, output: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    key = output["ResultWriterDetails"]["Key"]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    records: dict[str, list[dict[str, Any]]] = {}
    for status, files in manifest["ResultFiles"].items():
        records[status] = []
        for entry in files:
            records[status] += json.loads(s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read())
    return records


def roundtrip(point: RedrivePoint) -> RedrivePoint:
    """As a server's state directory keeps it: JSON text and back."""
    return RedrivePoint.from_json(json.loads(json.dumps(point.to_json())))


# ------------------------------------------------------------------------------------------ redrive


def test_a_redriven_map_run_reruns_only_its_unsuccessful_children_and_its_files_list_each_once(s3):
    failing = {3, 7}
    calls: list[int] = []

    def double(event: Any) -> Any:
        calls.append(event)
        if event in failing:
            raise ValueError(f"item {event} failed")
        return event * 2

    definition = fan_out(
        {"Work": task("double", End=True)},
        "Work",
        ResultWriter=WRITER,
        ToleratedFailureCount=5,
        MaxConcurrency=2,
    )
    runtime = FakeRuntime({"double": double})
    first = execute(
        definition, {"items": list(range(10))}, runtime=runtime, s3_client=s3, keep_child_records=True
    )
    assert first.status == "SUCCEEDED"  # within tolerance: the job's own check decides; force a failure
    # A failure past the tolerance: the same job with no tolerance.
    definition["States"]["Fan"].pop("ToleratedFailureCount")
    calls.clear()
    failed = execute(
        definition, {"items": list(range(10))}, runtime=runtime, s3_client=s3, keep_child_records=True
    )
    assert failed.status == "FAILED" and failed.error == "States.ExceedToleratedFailureThreshold"
    point = roundtrip(failed.redrive_point)
    assert point.state == "Fan" and point.unsupported is None and point.map_run is not None
    ran_first = sorted(calls)
    failing.clear()
    calls.clear()
    runs: list[Any] = []
    redriven = execute(
        definition,
        {"items": list(range(10))},
        runtime=runtime,
        s3_client=s3,
        redrive=point,
        on_map_run=runs.append,
    )
    assert redriven.status == "SUCCEEDED", redriven.cause
    assert sorted(calls) == sorted(set(range(10)) - (set(ran_first) - {3, 7}))  # the failed and the never run
    run = runs[-1]
    described = run.describe()
    assert described["mapRunArn"] == failed.map_runs[0].map_run_arn  # the same map run, redriven
    assert described["redriveCount"] == 1 and "redriveDate" in described
    assert described["itemCounts"]["succeeded"] == 10 and described["itemCounts"]["failed"] == 0
    assert redriven.output["MapRunArn"] == described["mapRunArn"]
    records = manifest_records(s3, redriven.output)
    assert sorted(json.loads(r["Output"]) for r in records["SUCCEEDED"]) == [i * 2 for i in range(10)]
    assert records["FAILED"] == [] and records["PENDING"] == []
    # A STANDARD child that failed is the same execution redriven; one that never ran starts now.
    failed_before = {3, 7} & set(ran_first)
    assert 3 in failed_before
    for record in records["SUCCEEDED"]:
        assert record["RedriveCount"] == (1 if json.loads(record["Input"]) in failed_before else 0)


def test_a_redriven_standard_child_resumes_at_its_failed_state(s3):
    prepared: list[Any] = []
    broken = {"on": True}

    def prepare(event: Any) -> Any:
        prepared.append(event)
        return {"n": event}

    def finish(event: Any) -> Any:
        if broken["on"] and event["n"] == 1:
            raise RuntimeError("not yet")
        return event["n"] + 100

    processor = {"Prepare": task("prepare", Next="Finish"), "Finish": task("finish", End=True)}
    definition = fan_out(processor, "Prepare")
    runtime = FakeRuntime({"prepare": prepare, "finish": finish})
    failed = execute(definition, {"items": [0, 1, 2]}, runtime=runtime, keep_child_records=True)
    assert failed.status == "FAILED"
    broken["on"] = False
    prepared.clear()
    redriven = execute(
        definition, {"items": [0, 1, 2]}, runtime=runtime, redrive=roundtrip(failed.redrive_point)
    )
    assert redriven.status == "SUCCEEDED"
    assert prepared == []  # child 1 resumed at Finish with Prepare's output; nothing else reran
    assert redriven.output == [100, 101, 102]  # no ResultWriter: the kept outputs rebuild the output


def test_a_redrive_resumes_the_execution_at_its_failed_state_with_its_input_and_variables():
    calls: list[str] = []
    broken = {"on": True}

    def first(event: Any) -> Any:
        calls.append("first")
        return {"value": 5}

    def second(event: Any) -> Any:
        calls.append("second")
        if broken["on"]:
            raise RuntimeError("flag set")
        return event

    definition = chain(
        ("First", task("first", Assign={"kept.$": "$.Payload.value"})),
        ("Second", {**task("second"), "Parameters": {"FunctionName": "second", "Payload": {"v.$": "$kept"}}}),
    )
    runtime = FakeRuntime({"first": first, "second": second})
    failed = execute(definition, {}, runtime=runtime)
    assert (failed.status, failed.redrive_point.state, failed.redrive_point.variables) == (
        "FAILED",
        "Second",
        {"kept": 5},
    )
    broken["on"] = False
    calls.clear()
    redriven = execute(definition, {}, runtime=runtime, redrive=roundtrip(failed.redrive_point))
    assert (redriven.status, redriven.output, calls) == ("SUCCEEDED", {"v": 5}, ["second"])


def test_what_the_engine_cannot_redrive_as_aws_does_is_refused_by_name():
    definition = chain(
        (
            "Both",
            {
                "Type": "Parallel",
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "Broken"}}}],
            },
        )
    )
    failed = execute(definition, {})
    assert failed.status == "FAILED"
    point = failed.redrive_point
    assert point.unsupported.startswith("not supported locally: redriving from the Parallel state 'Both'")
    with pytest.raises(NotRedrivable, match="Parallel state 'Both'"):
        execute(definition, {}, redrive=point)


def test_a_map_run_without_child_records_cannot_be_redriven():
    def fail(event: Any) -> Any:
        raise ValueError("x")

    definition = fan_out({"Work": task("work", End=True)}, "Work")
    failed = execute(definition, {"items": [1]}, runtime=FakeRuntime({"work": fail}))
    assert "kept no child records" in failed.redrive_point.unsupported


# ------------------------------------------------------------------------------------------ stop


def test_a_cancelled_wait_ends_the_execution_aborted_at_once():
    cancellation = Cancellation()
    threading.Timer(0.1, cancellation.cancel).start()
    started = time.monotonic()
    result = execute(chain(("Sleep", {"Type": "Wait", "Seconds": 60})), {}, cancellation=cancellation)
    assert result.status == "ABORTED" and time.monotonic() - started < 5
    assert result.redrive_point.state == "Sleep"


def test_a_cancelled_map_run_aborts_its_running_children_writes_what_finished_and_redrives(s3):
    release = threading.Event()
    attempt = {"number": 1}
    done: list[int] = []
    redone: list[int] = []

    def slow(event: Any) -> Any:
        number = attempt["number"]  # an abandoned child of the first attempt may finish later
        if number == 1 and event >= 2:
            release.wait(10)
        (done if number == 1 else redone).append(event)
        return event

    cancellation = Cancellation()
    runs: list[Any] = []
    definition = fan_out({"Work": task("slow", End=True)}, "Work", ResultWriter=WRITER, MaxConcurrency=2)
    runtime = FakeRuntime({"slow": slow})

    def cancel_when_two_run() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            counts = runs[0].describe()["itemCounts"] if runs else {}
            if counts.get("succeeded") == 2 and counts.get("running") == 2:  # 0 and 1 done, 2 and 3 held
                cancellation.cancel()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=cancel_when_two_run)
    watcher.start()
    result = execute(
        definition,
        {"items": list(range(6))},
        runtime=runtime,
        s3_client=s3,
        cancellation=cancellation,
        on_map_run=runs.append,
        keep_child_records=True,
    )
    watcher.join()
    release.set()
    assert result.status == "ABORTED"
    described = runs[-1].describe()
    assert described["status"] == "ABORTED" and "stopDate" in described
    assert (described["itemCounts"]["succeeded"], described["itemCounts"]["aborted"]) == (2, 2)
    assert described["executionCounts"]["aborted"] == 2 and described["itemCounts"]["running"] == 0
    key = f"out/{described['mapRunArn'].rsplit(':', 1)[1]}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    aborted = json.loads(
        s3.get_object(Bucket=BUCKET, Key=manifest["ResultFiles"]["FAILED"][0]["Key"])["Body"].read()
    )
    assert sorted(json.loads(r["Input"]) for r in aborted) == [2, 3]
    assert {r["Status"] for r in aborted} == {"ABORTED"}
    assert runs.count(runs[0]) == 2  # reported as it started and as it ended

    attempt["number"] = 2
    redriven = execute(
        definition,
        {"items": list(range(6))},
        runtime=runtime,
        s3_client=s3,
        redrive=roundtrip(result.redrive_point),
    )
    assert redriven.status == "SUCCEEDED"
    assert sorted(redone) == [2, 3, 4, 5]
    records = manifest_records(s3, redriven.output)
    assert sorted(json.loads(r["Output"]) for r in records["SUCCEEDED"]) == list(range(6))
    assert records["FAILED"] == []


def test_a_timed_out_execution_stops_its_map_run():
    release = threading.Event()

    def stuck(event: Any) -> Any:
        release.wait(20)
        return event

    definition = {**fan_out({"Work": task("stuck", End=True)}, "Work"), "TimeoutSeconds": 1}
    runs: list[Any] = []
    started = time.monotonic()
    result = execute(
        definition, {"items": [1, 2]}, runtime=FakeRuntime({"stuck": stuck}), on_map_run=runs.append
    )
    release.set()
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert time.monotonic() - started < 10
    assert runs[-1].describe()["status"] == "ABORTED"


# ------------------------------------------------------------------------------------------ live map runs


def test_a_map_run_is_reported_as_it_starts_and_its_counts_move_while_it_runs():
    gate = threading.Event()
    seen: list[dict[str, Any]] = []

    def held(event: Any) -> Any:
        gate.wait(10)
        return event

    def observe(run: Any) -> None:
        seen.append(run.describe())
        if len(seen) == 1:  # started: let the children go once the run shows them running

            def release() -> None:
                deadline = time.monotonic() + 10
                while run.describe()["itemCounts"]["running"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen.append(run.describe())
                gate.set()

            threading.Thread(target=release).start()

    definition = fan_out(
        {"Work": task("held", End=True)}, "Work", MaxConcurrency=3, ToleratedFailurePercentage=10
    )
    result = execute(
        definition, {"items": [1, 2, 3]}, runtime=FakeRuntime({"held": held}), on_map_run=observe
    )
    assert result.status == "SUCCEEDED"
    start, running, end = seen
    assert (start["status"], start["maxConcurrency"], start["toleratedFailurePercentage"]) == (
        "RUNNING",
        3,
        10,
    )
    assert start["executionArn"].endswith(
        ":execution:LocalStateMachine:" + start["executionArn"].rsplit(":", 1)[1]
    )
    assert running["itemCounts"]["running"] > 0 and running["status"] == "RUNNING"
    assert end["status"] == "SUCCEEDED" and end["itemCounts"]["succeeded"] == 3 and "stopDate" in end


def test_a_stop_during_a_state_that_then_finishes_still_aborts_there():
    """StopExecution while a task runs: the task's result is not kept; a redrive runs it again."""
    cancellation = Cancellation()

    def stops_the_execution(event: Any) -> Any:
        cancellation.cancel()
        return "done"

    definition = chain(("Call", task("call")), ("After", {"Type": "Pass"}))
    result = execute(
        definition, {"x": 1}, runtime=FakeRuntime({"call": stops_the_execution}), cancellation=cancellation
    )
    assert result.status == "ABORTED"
    assert (result.redrive_point.state, result.redrive_point.input) == ("Call", {"x": 1})
