"""ResultWriter (burstmap.local.dmap.result_writer): the manifest and result files in AWS's layout,
WriterConfig transformations and output types, file size limits; S3 is moto's in-process mock."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from map_support import BUCKET, WRITER, distributed, failing_on, read_json, run, services


def test_result_writer_writes_manifest_and_records_in_the_aws_layout(s3):
    svc = services(s3)
    state = distributed(Label="TestMap", ResultWriter=WRITER, ToleratedFailureCount=5)
    output = run(state, [0, 1, 2], failing_on(2), svc)
    map_run_arn = svc.map_runs[0].map_run_arn
    run_id = map_run_arn.rsplit(":", 1)[1]
    assert output == {
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": BUCKET, "Key": f"jobs/{run_id}/manifest.json"},
    }
    manifest = read_json(s3, f"jobs/{run_id}/manifest.json")
    succeeded_key, failed_key = f"jobs/{run_id}/SUCCEEDED_0.json", f"jobs/{run_id}/FAILED_0.json"
    assert manifest["DestinationBucket"] == BUCKET and manifest["MapRunArn"] == map_run_arn
    size = s3.head_object(Bucket=BUCKET, Key=succeeded_key)["ContentLength"]
    assert manifest["ResultFiles"]["SUCCEEDED"] == [{"Key": succeeded_key, "Size": size}]
    assert [f["Key"] for f in manifest["ResultFiles"]["FAILED"]] == [failed_key]
    assert manifest["ResultFiles"]["PENDING"] == []

    succeeded = sorted(read_json(s3, succeeded_key), key=lambda r: r["Input"])
    assert [json.loads(r["Output"]) for r in succeeded] == [0, 1]
    record = succeeded[0]
    assert set(record) == {
        "ExecutionArn",
        "Input",
        "InputDetails",
        "Name",
        "Output",
        "OutputDetails",
        "RedriveCount",
        "RedriveStatus",
        "RedriveStatusReason",
        "StartDate",
        "StateMachineArn",
        "Status",
        "StopDate",
    }
    assert record["Status"] == "SUCCEEDED" and record["RedriveCount"] == 0
    assert record["RedriveStatus"] == "NOT_REDRIVABLE"
    assert record["StateMachineArn"] == "arn:aws:states:us-east-1:111111111111:stateMachine:sm/TestMap"
    assert record["ExecutionArn"].endswith(f":execution:sm/TestMap:{record['Name']}")

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["StartDate"])
    (failed,) = read_json(s3, failed_key)
    assert failed["Status"] == "FAILED" and failed["Error"] == "Boom" and failed["Cause"] == "item [2]"
    assert failed["Input"] == "2" and "Output" not in failed
    assert svc.map_runs[0].item_counts.resultsWritten == 3


def test_result_writer_with_no_items_writes_an_empty_manifest(s3):
    svc = services(s3)
    output = run(distributed(ResultWriter=WRITER), [], svc=svc)
    manifest = read_json(s3, output["ResultWriterDetails"]["Key"])
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}


def test_past_the_threshold_results_are_still_written_with_pending_items(s3):
    svc = services(s3)
    state = distributed(ResultWriter=WRITER, MaxConcurrency=1)
    with pytest.raises(Exception) as failure:
        run(state, [0, 1, 2, 3], failing_on(1), svc)
    assert failure.value.error == "States.ExceedToleratedFailureThreshold"
    run_id = svc.map_runs[0].map_run_arn.rsplit(":", 1)[1]
    manifest = read_json(s3, f"jobs/{run_id}/manifest.json")
    pending = read_json(s3, manifest["ResultFiles"]["PENDING"][0]["Key"])
    assert [json.loads(r["Input"]) for r in pending] == [2, 3]
    assert all(r["Status"] == "PENDING" for r in pending)
    assert len(read_json(s3, manifest["ResultFiles"]["FAILED"][0]["Key"])) == 1
    assert svc.map_runs[0].item_counts.pending == 2 and svc.map_runs[0].status == "FAILED"


def test_compact_and_flatten_write_outputs_only_and_flatten_batch_arrays(s3):
    def batch_lists(child_input: Any, _: dict[str, Any]) -> Any:
        return [item * 10 for item in child_input["Items"]]

    shapes = {}
    for transformation in ("COMPACT", "FLATTEN"):
        svc = services(s3)
        writer = {**WRITER, "WriterConfig": {"Transformation": transformation, "OutputType": "JSON"}}
        output = run(
            distributed(ResultWriter=writer, ItemBatcher={"MaxItemsPerBatch": 2}, MaxConcurrency=1),
            [1, 2, 3],
            batch_lists,
            svc,
        )
        manifest = read_json(s3, output["ResultWriterDetails"]["Key"])
        shapes[transformation] = read_json(s3, manifest["ResultFiles"]["SUCCEEDED"][0]["Key"])
    assert shapes == {"COMPACT": [[10, 20], [30]], "FLATTEN": [10, 20, 30]}


def test_writer_config_without_s3_shapes_the_state_output():
    def pairs(child_input: Any, _: dict[str, Any]) -> Any:
        return [child_input, child_input]

    flatten = {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}}
    assert run(distributed(ResultWriter=flatten, MaxConcurrency=2), [1, 2], pairs) == [1, 1, 2, 2]
    none = run(distributed(ResultWriter={"WriterConfig": {"Transformation": "NONE"}}), [1], pairs)
    assert none[0]["Status"] == "SUCCEEDED" and json.loads(none[0]["Output"]) == [1, 1]


def test_jsonl_output_type_writes_one_value_a_line(s3):
    writer = {**WRITER, "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSONL"}}
    output = run(distributed(ResultWriter=writer, MaxConcurrency=1), [{"a": 1}, {"a": 2}], svc=services(s3))
    manifest = read_json(s3, output["ResultWriterDetails"]["Key"])
    (entry,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert entry["Key"].endswith("/SUCCEEDED_0.jsonl")
    body = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == [{"a": 1}, {"a": 2}]


def test_a_result_file_past_the_size_limit_continues_in_the_next_file(s3):
    writer = {**WRITER, "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSON"}}
    output = run(
        distributed(ResultWriter=writer, MaxConcurrency=1),
        list(range(100)),
        svc=services(s3),
        result_file_max_bytes=64,
    )
    files = read_json(s3, output["ResultWriterDetails"]["Key"])["ResultFiles"]["SUCCEEDED"]
    assert [f["Key"].rsplit("/", 1)[1] for f in files[:2]] == ["SUCCEEDED_0.json", "SUCCEEDED_1.json"]
    values = []
    for entry in files:
        body = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        assert len(body) == entry["Size"] <= 64
        values += json.loads(body)
    assert sorted(values) == list(range(100))


def test_result_writer_without_an_s3_client_fails_clearly():
    with pytest.raises(Exception) as failure:
        run(distributed(ResultWriter=WRITER), [1])
    assert failure.value.error == "States.ResultWriterFailed" and "endpoint" in failure.value.cause
