"""Distributed Map (burstmap.local.dmap.map_run): items, selector, batching, tolerance, ResultWriter.

S3 is moto's in-process mock. Child executions are plain Python callables standing in for the
interpreter's `run_child`; paths are the engine's own (burstmap.local.query.jsonpath).
"""

from __future__ import annotations

import gc
import io
import json
import re
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import burstmap.local
from burstmap.local.core.context import Services
from burstmap.local.core.errors import InvalidDefinition, StateRuntimeError, UnsupportedFeature, runtime_cause
from burstmap.local.core.json_text import to_json
from burstmap.local.dmap import item_batcher, item_reader, item_selector, item_text
from burstmap.local.dmap.direct_task import direct_task
from burstmap.local.dmap.item_batcher import BatcherSettings
from burstmap.local.dmap.map_run import run_distributed_map
from burstmap.local.dmap.settings import validate_distributed_map

BUCKET = "bucket-name"
CONTEXT = {
    "Execution": {"Id": "arn:aws:states:us-east-1:111111111111:execution:sm:exec-1", "Name": "exec-1"},
    "StateMachine": {"Id": "arn:aws:states:us-east-1:111111111111:stateMachine:sm", "Name": "sm"},
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class ChildFailed(Exception):
    """What run_child raises for a failed child: an ASL error name and cause (like StatesError)."""

    def __init__(self, error: str, cause: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def services(s3_client: Any = None, max_workers: int = 2) -> Services:
    return Services(runtime=None, s3=s3_client, max_workers=max_workers)


def distributed(**fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "End": True,
        **fields,
    }


def echo(child_input: Any, child_context: dict[str, Any]) -> Any:
    return child_input


def run(state: dict[str, Any], data: Any, child=echo, svc: Services | None = None, **kwargs: Any) -> Any:
    validate_distributed_map("MapState", state)
    return run_distributed_map("MapState", state, data, CONTEXT, svc or services(), child, **kwargs)


def reader(key: str, input_type: str, **config: Any) -> dict[str, Any]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": input_type, **config},
        "Parameters": {"Bucket.$": "$.Bucket", "Key": key},
    }


def read_json(s3_client: Any, key: str) -> Any:
    return json.loads(s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


# ---------------------------------------------------------------------------------------------
# Items from the state input, ItemSelector
# ---------------------------------------------------------------------------------------------


def test_items_path_outputs_come_back_in_item_order_whatever_the_finish_order():
    def slow_for_small(child_input: Any, _: dict[str, Any]) -> Any:
        time.sleep((10 - child_input) * 0.002)
        return child_input * 2

    state = distributed(ItemsPath="$.values", MaxConcurrency=5)
    assert run(state, {"values": list(range(10))}, slow_for_small) == [i * 2 for i in range(10)]


def test_item_selector_sees_index_value_and_the_state_input():
    state = distributed(
        ItemSelector={
            "constantValue": "constant",
            "mapValue.$": "$$.Map.Item.Value",
            "index.$": "$$.Map.Item.Index",
            "fromInput.$": "$",
        },
    )
    assert run(state, ["Hello", "World"]) == [
        {"constantValue": "constant", "mapValue": "Hello", "index": 0, "fromInput": ["Hello", "World"]},
        {"constantValue": "constant", "mapValue": "World", "index": 1, "fromInput": ["Hello", "World"]},
    ]


def test_legacy_parameters_act_as_item_selector():
    state = distributed(Parameters={"v.$": "$$.Map.Item.Value"})
    assert run(state, ["a"]) == [{"v": "a"}]


def test_items_path_to_a_non_array_fails_with_states_runtime():
    with pytest.raises(Exception) as failure:
        run(distributed(ItemsPath="$.x"), {"x": {"a": 1}})
    assert failure.value.error == "States.Runtime"
    assert "ItemsPath $.x" in failure.value.cause


def test_child_context_names_a_child_execution_of_the_map_run():
    seen: list[dict[str, Any]] = []

    def child(child_input: Any, child_context: dict[str, Any]) -> Any:
        seen.append(child_context)
        return child_input

    svc = services()
    run(distributed(Label="TestMap", MaxConcurrency=1), [1], child, svc)
    execution = seen[0]["Execution"]
    assert seen[0]["StateMachine"] == {
        "Id": "arn:aws:states:us-east-1:111111111111:stateMachine:sm/TestMap",
        "Name": "sm/TestMap",
    }
    assert (
        execution["Id"] == f"arn:aws:states:us-east-1:111111111111:execution:sm/TestMap:{execution['Name']}"
    )
    assert execution["Input"] == 1

    assert re.fullmatch(UUID, execution["Name"])
    assert re.fullmatch(
        r"arn:aws:states:us-east-1:111111111111:mapRun:sm/TestMap:" + UUID, svc.map_runs[0].map_run_arn
    )


# ---------------------------------------------------------------------------------------------
# ItemReader
# ---------------------------------------------------------------------------------------------

CSV_BODY = (
    "Col1,Col2,Col3\nValue1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"
)


def test_csv_first_row_header_pads_short_rows_and_drops_extra_fields(s3):
    s3.put_object(Bucket=BUCKET, Key="file.csv", Body=CSV_BODY)
    state = distributed(MaxConcurrency=1, ItemReader=reader("file.csv", "CSV", CSVHeaderLocation="FIRST_ROW"))
    # Expected output recorded on AWS (conformance case item_reader_csv_header_first_row).
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"Col1": "Value1", "Col2": "Value2", "Col3": "Value3"},
        {"Col1": "Value4", "Col2": "Value5", "Col3": "Value6"},
        {"Col1": "", "Col2": "", "Col3": ""},
        {"Col1": "true", "Col2": "1", "Col3": "'HelloWorld'"},
        {"Col1": "Null", "Col2": "None", "Col3": ""},
        {"Col1": "   ", "Col2": "", "Col3": ""},
    ]


def test_csv_given_headers_and_quoted_fields(s3):
    s3.put_object(Bucket=BUCKET, Key="g.csv", Body='a,"b,1\nnext",c\n1,2,3\n')
    state = distributed(ItemReader=reader("g.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["H1", "H2"]))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"H1": "a", "H2": "b,1\nnext"},
        {"H1": "1", "H2": "2"},
    ]


def test_csv_duplicate_given_headers_fail_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="g.csv", Body="1,2\n")
    state = distributed(ItemReader=reader("g.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["H1", "H1"]))
    with pytest.raises(Exception) as failure:
        run(state, {"Bucket": BUCKET}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (
        "States.ItemReaderFailed",
        "CSV headers cannot contain duplicates.",
    )


def test_json_reader_and_items_path_is_ignored_with_an_item_reader(s3):
    s3.put_object(Bucket=BUCKET, Key="file.json", Body=json.dumps([["from-bucket-item-0"], {"k": 1}]))
    state = distributed(ItemsPath="$.from_previous", ItemReader=reader("file.json", "JSON"))
    assert run(state, {"Bucket": BUCKET, "from_previous": ["x"]}, svc=services(s3)) == [
        ["from-bucket-item-0"],
        {"k": 1},
    ]


def test_json_reader_over_an_object_fails_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="file.json", Body='{"Hello": "world"}')
    with pytest.raises(Exception) as failure:
        run(distributed(ItemReader=reader("file.json", "JSON")), {"Bucket": BUCKET}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (
        "States.ItemReaderFailed",
        "Attempting to map over non-iterable node.",
    )


def test_jsonl_reader_skips_blank_lines(s3):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body='{"a": 1}\n\n[2]\n"three"\n')
    state = distributed(ItemReader=reader("f.jsonl", "JSONL"))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [{"a": 1}, [2], "three"]


@pytest.mark.parametrize(
    ("max_items", "expected"), [(2, [0, 1]), (0, [0, 1, 2, 3]), (100_000_001, [0, 1, 2, 3])]
)
def test_max_items_path_caps_the_items_and_zero_means_no_limit(s3, max_items, expected):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n1\n2\n3\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItemsPath="$.MaxItems"))
    assert run(state, {"Bucket": BUCKET, "MaxItems": max_items}, svc=services(s3)) == expected


def test_max_items_literal(s3):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n1\n2\n3\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItems=3))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [0, 1, 2]


@pytest.mark.parametrize(
    ("value", "error", "cause"),
    [
        (-1, "States.ItemReaderFailed", "field MaxItems must be positive"),
        (
            1.5,
            "States.Runtime",
            'The MaxItemsPath field refers to value "1.5" which is not a valid integer: $.MaxItems',
        ),
    ],
)
def test_bad_max_items_path_values_fail_with_aws_error_texts(s3, value, error, cause):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItemsPath="$.MaxItems"))
    with pytest.raises(Exception) as failure:
        run(state, {"Bucket": BUCKET, "MaxItems": value}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (error, cause)


def test_list_objects_v2_items_are_shaped_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="data/a.txt", Body=b"12345")
    s3.put_object(Bucket=BUCKET, Key="data/b.txt", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="other/c.txt", Body=b"1")
    state = distributed(
        ItemReader={
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.prefix"},
        }
    )
    items = run(state, {"prefix": "data/"}, svc=services(s3))
    assert [item["Key"] for item in items] == ["data/a.txt", "data/b.txt"]
    first = items[0]
    assert list(first) == ["Etag", "Key", "LastModified", "Size", "StorageClass"]
    assert first["Size"] == 5 and first["StorageClass"] == "STANDARD"
    assert first["Etag"].startswith('"') and isinstance(first["LastModified"], int)
    assert abs(first["LastModified"] - time.time()) < 3600


# ---------------------------------------------------------------------------------------------
# ItemBatcher
# ---------------------------------------------------------------------------------------------


def test_batches_by_item_count_like_the_aws_example():
    state = distributed(ItemBatcher={"MaxItemsPerBatch": 100})
    batches = run(state, list(range(1130)))
    assert [len(b["Items"]) for b in batches] == [100] * 11 + [30]
    assert batches[-1]["Items"][0] == 1100 and "BatchInput" not in batches[0]


def test_batch_item_count_from_a_path_accepts_an_integer_string():
    state = distributed(ItemBatcher={"MaxItemsPerBatchPath": "$.n"}, ItemsPath="$.items")
    assert run(state, {"n": "2", "items": [1, 2, 3]}) == [{"Items": [1, 2]}, {"Items": [3]}]


def test_batches_by_bytes_split_exactly_at_the_limit_with_batch_input():
    items = [{"k": "x" * (i % 7)} for i in range(200)]
    limit = 300
    state = distributed(
        ItemBatcher={"MaxInputBytesPerBatch": limit, "BatchInput": {"job.$": "$.job"}},
        ItemsPath="$.items",
        ItemSelector={"v.$": "$$.Map.Item.Value.k"},
    )
    batches = run(state, {"job": "j1", "items": items})

    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")).encode())

    flattened = [item for b in batches for item in b["Items"]]
    assert flattened == [{"v": item["k"]} for item in items]
    for position, batch in enumerate(batches):
        assert batch["BatchInput"] == {"job": "j1"}
        assert size(batch) <= limit
        if position + 1 < len(batches):  # the next item would not have fitted
            grown = {**batch, "Items": batch["Items"] + [batches[position + 1]["Items"][0]]}
            assert size(grown) > limit


def test_an_item_larger_than_the_byte_limit_alone_fails_with_a_clear_cause():
    state = distributed(ItemBatcher={"MaxInputBytesPerBatch": 20})
    with pytest.raises(Exception) as failure:
        run(state, ["short", "x" * 50])
    assert failure.value.error == "States.Runtime"
    assert "index 1" in failure.value.cause and "MaxInputBytesPerBatch (20)" in failure.value.cause


# ---------------------------------------------------------------------------------------------
# Tolerated failures
# ---------------------------------------------------------------------------------------------


def failing_on(*bad: int):
    def child(child_input: Any, _: dict[str, Any]) -> Any:
        values = (
            child_input["Items"]
            if isinstance(child_input, dict) and "Items" in child_input
            else [child_input]
        )
        if any(value in bad for value in values):
            raise ChildFailed("Boom", f"item {values}")
        return child_input

    return child


def test_without_tolerance_one_failure_fails_the_map():
    with pytest.raises(Exception) as failure:
        run(distributed(MaxConcurrency=1), [0, 1, 2], failing_on(1))
    assert failure.value.error == "States.ExceedToleratedFailureThreshold"
    assert failure.value.cause == "The specified tolerated failure threshold was exceeded"


def test_an_explicit_zero_count_tolerates_nothing():
    with pytest.raises(Exception) as failure:
        run(distributed(ToleratedFailureCount=0), [0, 1], failing_on(1))
    assert failure.value.error == "States.ExceedToleratedFailureThreshold"


def test_failures_within_the_count_leave_the_failed_records_in_the_output():
    svc = services()
    output = run(distributed(ToleratedFailureCount=1, MaxConcurrency=1), [0, 1, 2], failing_on(1), svc)
    assert output[0] == 0 and output[2] == 2
    failed = output[1]
    assert failed["Status"] == "FAILED" and failed["Error"] == "Boom" and failed["Cause"] == "item [1]"
    assert failed["Input"] == "1" and "Output" not in failed
    counts = svc.map_runs[0].item_counts
    assert (counts.succeeded, counts.failed, counts.total) == (2, 1, 3)
    assert svc.map_runs[0].status == "SUCCEEDED"


@pytest.mark.parametrize(("failures", "fails"), [(2, False), (3, True)])
def test_percentage_threshold_is_strictly_more_than_the_share(failures, fails):
    state = distributed(ToleratedFailurePercentage=20)
    child = failing_on(*range(failures))
    if fails:
        with pytest.raises(Exception) as failure:
            run(state, list(range(10)), child)
        assert failure.value.error == "States.ExceedToleratedFailureThreshold"
    else:
        assert len(run(state, list(range(10)), child)) == 10


@pytest.mark.parametrize(("tolerated", "fails"), [(4, True), (5, False)])
def test_a_failed_batch_counts_every_item_in_it(tolerated, fails):
    svc = services()
    state = distributed(ToleratedFailureCount=tolerated, ItemBatcher={"MaxItemsPerBatch": 5})
    if fails:
        with pytest.raises(Exception) as failure:
            run(state, list(range(20)), failing_on(7), svc)
        assert failure.value.error == "States.ExceedToleratedFailureThreshold"
    else:
        run(state, list(range(20)), failing_on(7), svc)
    run_record = svc.map_runs[0]
    assert run_record.item_counts.failed == 5 and run_record.execution_counts.failed == 1
    assert run_record.status == ("FAILED" if fails else "SUCCEEDED")


@pytest.mark.parametrize(
    ("field", "value", "cause"),
    [
        ("ToleratedFailureCountPath", -1, "ToleratedFailureCount cannot be negative."),
        (
            "ToleratedFailureCountPath",
            "NoNumber",
            'The ToleratedFailureCountPath field refers to value "NoNumber" which is not a valid integer: '
            "$.t",
        ),
        ("ToleratedFailurePercentagePath", 100.1, "ToleratedFailurePercentage must be between 0 and 100."),
        (
            "ToleratedFailurePercentagePath",
            {},
            'The ToleratedFailurePercentagePath field refers to value "{}" which is not a valid float: $.t',
        ),
    ],
)
def test_tolerance_paths_are_validated_with_aws_causes(field, value, cause):
    with pytest.raises(Exception) as failure:
        run(distributed(ItemsPath="$.items", **{field: "$.t"}), {"items": [0], "t": value})
    # The state runner (states.py) prefixes States.Runtime causes with the state name and event id.
    assert isinstance(failure.value, StateRuntimeError)
    assert (failure.value.error, failure.value.cause) == ("States.Runtime", cause)


# ---------------------------------------------------------------------------------------------
# ResultWriter
# ---------------------------------------------------------------------------------------------

WRITER = {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "jobs"}}


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


# ---------------------------------------------------------------------------------------------
# Concurrency and memory
# ---------------------------------------------------------------------------------------------


def concurrency_probe():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def child(child_input: Any, _: dict[str, Any]) -> Any:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.005)
        with lock:
            state["now"] -= 1
        return child_input

    return child, state


def test_never_more_children_at_once_than_max_concurrency():
    child, probe = concurrency_probe()
    run(distributed(MaxConcurrency=3), list(range(60)), child, services(max_workers=8))
    assert 1 < probe["peak"] <= 3


def test_max_concurrency_zero_is_capped_by_the_local_workers_not_the_item_count():
    child, probe = concurrency_probe()
    run(distributed(), list(range(60)), child, services(max_workers=2))
    assert 1 < probe["peak"] <= 2 * 2


def test_max_concurrency_path():
    child, probe = concurrency_probe()
    run(distributed(MaxConcurrencyPath="$.c", ItemsPath="$.items"), {"c": 1, "items": list(range(10))}, child)
    assert probe["peak"] == 1


class DiscardingS3:
    """An S3 stand-in for the memory test: moto keeps objects in this process, which tracemalloc
    would count; this one serves one prepared object and counts uploaded bytes without keeping them."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.uploaded: dict[str, int] = {}
        self.manifest: Any = None

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.body)}

    def upload_fileobj(self, handle: Any, bucket: str, key: str) -> None:
        size = 0
        while chunk := handle.read(1 << 16):
            size += len(chunk)
        self.uploaded[key] = size

    def put_object(self, **request: Any) -> None:
        self.manifest = json.loads(request["Body"])


def test_200k_jsonl_items_through_the_writer_never_hold_all_records():
    count = 200_000
    s3_client = DiscardingS3("".join(f'{{"i":{i},"pad":"{"x" * 20}"}}\n' for i in range(count)).encode())
    state = distributed(
        ItemReader=reader("big.jsonl", "JSONL"),
        ResultWriter=WRITER,
        MaxConcurrency=4,
        ItemBatcher={"MaxItemsPerBatch": 100},
    )
    svc = services(s3_client)
    gc.collect()
    tracemalloc.start()
    try:
        run(state, {"Bucket": BUCKET}, svc=svc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert svc.map_runs[0].item_counts.succeeded == count
    assert svc.map_runs[0].execution_counts.succeeded == count // 100
    written = sum(s3_client.uploaded.values())
    assert s3_client.manifest["ResultFiles"]["SUCCEEDED"][0]["Size"] == written
    # 6.6 MB of items in, 20 MB of records out: holding either, even as bytes, would pass this bound.
    assert written > 15_000_000
    assert peak < 5_000_000, f"peak traced memory {peak} bytes"


# ---------------------------------------------------------------------------------------------
# Validation at load time
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"ItemReader": {**reader("k", "PARQUET")}},
            "'ItemReader.ReaderConfig.InputType PARQUET' in state 'MapState'",
        ),
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": "b", "Key": "k"},
                    "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/a"},
                }
            },
            "'ItemReader.ReaderConfig.ItemsPointer'",
        ),
        ({"Items": [1]}, "'Items' in state 'MapState'"),
        ({"QueryLanguage": "JSONata"}, "JSONata"),
        (
            {
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "b", "ExpectedBucketOwner": "1"},
                }
            },
            "'ResultWriter.Parameters.ExpectedBucketOwner'",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(fields, named):
    with pytest.raises(UnsupportedFeature, match="not supported locally") as refused:
        validate_distributed_map("MapState", distributed(**fields))
    assert named in str(refused.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"ItemBatcher": {}},
        {"ItemBatcher": {"MaxInputBytesPerBatch": 262_145}},
        {"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}},
        {"ToleratedFailurePercentage": 101},
        {"MaxConcurrency": -1},
        {"ResultWriter": {}},
        {
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "Parameters": {"Bucket": "b", "Key": "k"},
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"},
            }
        },
    ],
)
def test_invalid_values_are_refused_at_load_time(fields):
    with pytest.raises(InvalidDefinition, match="MapState"):
        validate_distributed_map("MapState", distributed(**fields))


def test_the_architecture_example_definition_validates():
    state = distributed(
        ItemReader=reader("k.jsonl", "JSONL"),
        ItemSelector={
            "item.$": "$$.Map.Item.Value",
            "index.$": "$$.Map.Item.Index",
            "parameters.$": "$.parameters",
        },
        ItemBatcher={
            "MaxItemsPerBatch": 10,
            "MaxInputBytesPerBatch": 262144,
            "BatchInput": {"parameters.$": "$.p"},
        },
        MaxConcurrency=100,
        ToleratedFailurePercentage=0,
        Label="Compute",
        ResultWriter=WRITER,
        ResultPath="$.result",
    )
    validate_distributed_map("Compute", state)
    assert UnsupportedFeature is burstmap.local.UnsupportedFeature


# ---------------------------------------------------------------------------------------------
# AWS recordings (shared/conformance) whose whole machine is one distributed Map of a Pass child
# ---------------------------------------------------------------------------------------------

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "cases"


def _single_map_executions() -> list[Any]:
    """(case, input, expected) for cases that need no interpreter: StartAt is the distributed Map,
    it ends the machine (or is followed by a Succeed), and its child is a lone Pass state."""
    found = []
    for group in ("map_distributed", "map_item_reader"):
        for path in sorted((CONFORMANCE / group).glob("*.json")):
            case = json.loads(path.read_text())
            definition = case["definition"]
            state = definition["States"][definition["StartAt"]]
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            rest = [s for name, s in definition["States"].items() if name != definition["StartAt"]]
            if (
                state.get("Type") != "Map"
                or [s["Type"] for s in processor.get("States", {}).values()] != ["Pass"]
                or any(s["Type"] != "Succeed" for s in rest)
                or any(key in state for key in ("InputPath", "ResultPath", "OutputPath", "ResultWriter"))
            ):
                continue
            executions = [(case["input"], case["expected"])]
            executions += [(more["input"], more["expected"]) for more in case.get("more_executions", [])]
            for number, (data, expected) in enumerate(executions):
                found.append(pytest.param(case, data, expected, id=f"{case['name']}-{number}"))
    return found


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="shared conformance cases not present")
@pytest.mark.parametrize(("case", "data", "expected"), _single_map_executions())
def test_aws_recorded_single_map_cases(s3, case, data, expected):
    for obj in case.get("s3_setup", {}).get("objects", []):
        s3.put_object(Bucket=obj["bucket"], Key=obj["key"], Body=obj["body"].encode())
    name = case["definition"]["StartAt"]
    state = case["definition"]["States"][name]
    validate_distributed_map(name, state)
    if expected["status"] == "SUCCEEDED":
        assert run_distributed_map(name, state, data, CONTEXT, services(s3), echo) == expected["output"]
        return
    with pytest.raises(Exception) as failure:
        run_distributed_map(name, state, data, CONTEXT, services(s3), echo)
    cause = failure.value.cause
    if isinstance(failure.value, StateRuntimeError):  # as the state runner words it
        cause = runtime_cause(name, 2, failure.value.detail)
    cause = re.sub(r"event id #\d+", "event id #N", cause)
    assert (failure.value.error, cause) == (
        expected["error"],
        re.sub(r"event id #\d+", "event id #N", expected["cause"]),
    )


# ---------------------------------------------------------------------------------------------
# Fast paths (bulk JSONL parsing, column-wise ItemSelector, whole-batch sizing) against the
# straightforward per-item algorithms they replace
# ---------------------------------------------------------------------------------------------

_JSONL_PIECES = [
    "1", "-2", "3.5", "1e5", '"a"', '"b,c"', '"[x"', "true", "null", '{"a":1}', "[1,2]", "[1", "2]",
    "1,2", "", " ", "  7", "8  ", "\r", '"é"', '{"k":[1,{"z":2}]}', "}", '"a', 'b"', "1 2", "\x0c",
    "\ufeff1", "[[3", "4]]", "1],[2",
]  # fmt: skip


def _jsonl_line_by_line(text: str) -> tuple[list[Any], str | None]:
    """The reference: json.loads per line as the text iterates, blank lines skipped."""
    items: list[Any] = []
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                return items, f"line {number} is not valid JSON: {exc}"
    return items, None


def _jsonl_chunked(text: str) -> tuple[list[Any], str | None]:
    items: list[Any] = []
    try:
        for chunk in item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k"):
            items.extend(chunk)
    except StateRuntimeError:
        raise
    except Exception as exc:  # States.ItemReaderFailed
        return items, str(getattr(exc, "cause", exc)).split("s3://b/k ", 1)[1]
    return items, None


@pytest.mark.parametrize("block", [1, 5, 64, 64 * 1024])
def test_jsonl_blocks_parse_exactly_like_line_by_line_reading(monkeypatch, block):
    """Random JSONL texts made of valid, blank, bad and bracket-forging lines, CRLF and lone CR
    line ends: same items, and the same first bad line (number and message), for any block size."""
    import random

    monkeypatch.setattr(item_text, "JSONL_BLOCK_CHARS", block)
    rng = random.Random(block)
    for _ in range(3000):
        text = "".join(
            rng.choice(_JSONL_PIECES) + rng.choice(["\n", "\n", "\r\n", "\r"])
            for _ in range(rng.randint(0, 10))
        )
        if rng.random() < 0.5:
            text = text.rstrip("\n")
        expected, got = _jsonl_line_by_line(text), _jsonl_chunked(text)
        assert json.dumps(got[0]) == json.dumps(expected[0]), repr(text)
        assert got[1] == expected[1], repr(text)


def test_jsonl_scalar_lines_forging_brackets_are_not_merged():
    """'[1' + '2]' (or '1],[2') are one value across lines only in a bulk parse: refused by line."""
    for text, line in (("[1\n2]\n", 1), ("5\n1],[2\n[[3\n4]]\n", 2), ('"a\nb"\n', 1), ("1,2\n3\n", 1)):
        items, error = _jsonl_chunked(text)
        assert error is not None and error.startswith(f"line {line} "), (text, error)


def test_item_selector_fast_path_matches_the_template_per_item():
    """The column-wise selector gives what resolve_template gives for each item, constants and
    context fields included, and shares nothing that resolve_template would copy."""
    from burstmap.local.query.payload_template import resolve_template

    selector = {
        "item.$": "$$.Map.Item.Value",
        "index.$": "$$.Map.Item.Index",
        "parameters.$": "$.parameters",
        "execution.$": "$$.Execution.Name",
        "literal": "x",
        "nothing": None,
    }
    data = {"parameters": {"p": 1}}
    items = [{"n": i} for i in range(10_000)]
    chunks = iter([items[:1], items[1:4000], items[4000:]])
    got = [
        value for chunk in item_selector.selected_chunks(selector, chunks, data, CONTEXT) for value in chunk
    ]
    expected = [
        resolve_template(selector, data, {**CONTEXT, "Map": {"Item": {"Index": i, "Value": v}}})
        for i, v in enumerate(items)
    ]
    assert got == expected
    assert [list(value) for value in got[:3]] == [list(value) for value in expected[:3]]  # key order
    assert item_selector.selector_fields({"nested": {"a.$": "$$.Map.Item.Value"}}) is None
    assert item_selector.selector_fields({"v.$": "$$.Map.Item.Value.k"}) is None
    assert item_selector.selector_fields({"f.$": "States.Format('{}', $.a)"}) is None
    assert item_selector.selector_fields({"all.$": "$$"}) is None


def test_item_selector_fast_path_fails_on_the_first_item_like_the_template():
    state = distributed(ItemSelector={"v.$": "$$.Map.Item.Value", "p.$": "$.missing"})
    with pytest.raises(StateRuntimeError, match=r"\$\.missing"):
        run(state, [1, 2, 3])


def _reference_batches(items: list[Any], max_items: int | None, limit: int, envelope: int) -> list[int]:
    """The greedy batcher item by item: batch lengths."""
    lengths: list[int] = []
    count, size = 0, envelope
    for item in items:
        item_bytes = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
        if count and ((max_items is not None and count >= max_items) or size + 1 + item_bytes > limit):
            lengths.append(count)
            count, size = 0, envelope
        size += item_bytes + (1 if count else 0)
        count += 1
    if count:
        lengths.append(count)
    return lengths


@pytest.mark.parametrize("max_items", [None, 1, 3, 50, 1000])
@pytest.mark.parametrize("limit", [60, 200, 262_144])
def test_whole_batch_sizing_gives_the_greedy_per_item_batches(max_items, limit):
    """Measured a whole batch at a time (and by item only past the byte limit), in chunks of any
    size, batches are exactly the item-by-item greedy ones."""
    import random

    rng = random.Random(limit * 7 + (max_items or 0))
    items = [rng.choice([1, "é" * rng.randint(0, 15), {"k": "v" * rng.randint(0, 20)}]) for _ in range(3000)]
    cuts = sorted(rng.sample(range(1, len(items)), 40))
    chunks = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]
    batcher: dict[str, Any] = {"MaxInputBytesPerBatch": limit}
    if max_items is not None:
        batcher["MaxItemsPerBatch"] = max_items
    settings = BatcherSettings.resolve(batcher, {}, CONTEXT)
    batches = list(item_batcher.batched("M", iter(chunks), settings))
    assert [batch.item_count for batch in batches] == _reference_batches(items, max_items, limit, 12)
    assert [item for batch in batches for item in batch.child_input["Items"]] == items
    assert [batch.first_index for batch in batches] == [
        sum(b.item_count for b in batches[:n]) for n in range(len(batches))
    ]
    # A batch measured whole keeps that encoding as its payload text, exactly the encoded input.
    for batch in batches:
        if batch.json_text is not None:
            assert batch.json_text == to_json(batch.child_input)
    if max_items is not None and limit == 262_144:
        assert all(batch.json_text is not None for batch in batches)


def test_integer_jsonl_chunks_carry_a_size_bound_the_batcher_trusts():
    """A block of integer lines knows its JSON size without encoding it; batches cut from such
    chunks are the greedy ones, and a bound over the limit still falls back to measuring."""
    text = "".join(f"{i}\n" for i in range(5000)) + "-0\n  7\n"
    chunks = list(item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k"))
    items = [item for chunk in chunks for item in chunk]
    assert items == [*range(5000), 0, 7]
    assert all(isinstance(chunk, item_text.BoundedChunk) for chunk in chunks[:-1])
    assert sum(chunk.json_bytes_bound for chunk in chunks if isinstance(chunk, item_text.BoundedChunk)) >= (
        sum(len(json.dumps(item)) for item in items[: sum(len(c) for c in chunks[:-1])])
    )
    for limit in (100, 5000, 262_144):
        settings = BatcherSettings.resolve(
            {"MaxItemsPerBatch": 700, "MaxInputBytesPerBatch": limit}, {}, CONTEXT
        )
        batches = list(item_batcher.batched("M", iter(chunks), settings))
        assert [batch.item_count for batch in batches] == _reference_batches(items, 700, limit, 12)
    assert not isinstance(
        item_text.parse_jsonl_block("1.5\n2\n", 0, "w")[0], item_text.BoundedChunk
    )  # a float's JSON text can be longer than its source ("1e5" is 100000.0)


@pytest.mark.parametrize("seed", range(6))
def test_item_separator_after_finds_the_comma_that_ends_the_nth_item(seed):
    """Counting commas from a guessed width lands on the same comma as splitting the text, for
    items of very uneven widths and any guess."""
    import random

    rng = random.Random(seed)
    values = [rng.choice([0, 7, -3, 10 ** rng.randint(0, 30), None]) for _ in range(rng.randint(1, 400))]
    texts = [json.dumps(value) for value in values]
    text = ",".join(texts)
    starts = [0]
    for piece in texts:
        starts.append(starts[-1] + len(piece) + 1)
    for _ in range(200):
        first = rng.randrange(len(values))
        count = rng.randint(1, len(values) - first)
        width = rng.choice([0.1, 1.0, len(text) / len(values), 50.0, 10_000.0])
        expected = starts[first + count] - 1  # the comma after the last item, or the text's end
        assert item_text.item_separator_after(text, starts[first], count, width) == expected
    with pytest.raises(ValueError):
        item_text.item_separator_after(text, 0, len(values) + 1, 2.0)


@pytest.mark.parametrize("max_items", [1, 7, 700, None])
@pytest.mark.parametrize("limit", [100, 5000, 262_144])
def test_batches_cut_from_the_reader_text_are_exactly_the_encoded_batches(max_items, limit):
    """Batches built from integer JSONL blocks carry their input's text, cut from the reader's
    text: byte for byte what encoding the batch gives, across block boundaries, next to blocks
    that must be parsed (-0, blanks, floats, strings) and with BatchInput. With the integer blocks
    left unparsed by the reader, the batches are the same, item for item."""
    import random

    rng = random.Random(limit + (max_items or 0))
    lines = [rng.choice(["1", "-42", str(10 ** rng.randint(0, 25))]) for _ in range(30_000)]
    lines[rng.randrange(len(lines))] = "0"
    near = rng.randrange(len(lines) - 600)
    for odd in ("-0", " 5", "1.5", '"s"', "true", "[1]", "null"):  # each makes its block parsed
        lines.insert(near + rng.randrange(600), odd)
    text = "".join(line + "\n" for line in lines)
    batcher: dict[str, Any] = {"MaxInputBytesPerBatch": limit, "BatchInput": {"job": "é", "n": 3}}
    if max_items is not None:
        batcher["MaxItemsPerBatch"] = max_items
    settings = BatcherSettings.resolve(batcher, {}, CONTEXT)
    runs = {}
    for unparsed in (False, True):
        reader = item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k", unparsed_integers=unparsed)
        chunks = list(reader)
        runs[unparsed] = (chunks, list(item_batcher.batched("M", iter(chunks), settings)))
    chunks, batches = runs[False]
    assert any(getattr(chunk, "json_text", None) for chunk in chunks)
    assert any(isinstance(chunk, item_text.UnparsedIntegers) for chunk in runs[True][0])
    items = [item for chunk in chunks for item in chunk]
    assert [item for batch in batches for item in batch.child_input["Items"]] == items
    has_text = [getattr(chunk, "json_text", None) is not None for chunk in chunks for _ in chunk]
    for batch in batches:
        span = has_text[batch.first_index : batch.first_index + batch.item_count]
        if all(span):  # cut from the reader's text (others may carry the encoding they were measured by)
            assert batch.json_text is not None
    if len(batches) > 10:  # most batches lie in blocks with text
        assert sum(batch.json_text is not None for batch in batches) > len(batches) // 3
    unparsed_batches = runs[True][1]
    assert [(b.sequence, b.first_index, b.item_count) for b in unparsed_batches] == [
        (b.sequence, b.first_index, b.item_count) for b in batches
    ]
    for batch, twin in zip(batches, unparsed_batches, strict=True):
        for each in (batch, twin):
            if each.json_text is not None:
                assert each.json_text == to_json(each.child_input)
        assert twin.child_input == batch.child_input


def test_unparsed_integer_blocks_are_exactly_the_canonical_ones():
    """The reader leaves a block unparsed only when every line is an integer as compact JSON
    writes it; anything else is parsed (and a bad line still fails with its line number)."""
    canonical = ["0", "7", "-7", "10", "-1234567890123456789012345", "0\n0", "5\n0", "0\n5"]
    other = [
        "00",
        "-0",
        "01",
        "-01",
        "+1",
        "1 ",
        " 1",
        "1\t",
        "",
        "1\n\n2",
        "-",
        "--1",
        "1-2",
        "5-",
        "1.0",
        "1e3",
        "null",
        '"1"',
        "[1]",
        "٣",
        "1\n-\n2",
        "1\n-0",
    ]
    for body in canonical:
        assert item_text.canonical_integer_lines(body), body
        chunk, error = item_text.parse_jsonl_block(body + "\n", 0, "w", unparsed_integers=True)
        assert error is None and isinstance(chunk, item_text.UnparsedIntegers)
        assert chunk.parsed() == json.loads("[" + body.replace("\n", ",") + "]")
        assert chunk.json_text == ",".join(json.dumps(v) for v in chunk.parsed())
    for body in other:
        assert not item_text.canonical_integer_lines(body), body
    chunk, error = item_text.parse_jsonl_block("1\n2\n0x\n", 0, "s3://b/k", unparsed_integers=True)
    assert chunk == [1, 2] and "line 3" in str(error)


# ---------------------------------------------------------------------------------------------
# The one-Task child run without the interpreter gives what the interpreter gives
# ---------------------------------------------------------------------------------------------


def _one_task_machine(items: list[Any], *, batch: int | None, retry: bool, identity_input_path: bool) -> dict:
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:111111111111:function:f", "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    if retry:
        task["Retry"] = [{"ErrorEquals": ["Lambda.TooManyRequestsException", "Flaky"], "MaxAttempts": 3}]
    if identity_input_path:
        task["InputPath"] = "$"  # the same child, but outside the direct runner's shape
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "MaxConcurrency": 1,
        "ToleratedFailurePercentage": 100,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Compute",
            "States": {"Compute": task},
        },
        "End": True,
    }
    if batch:
        state["ItemBatcher"] = {"MaxItemsPerBatch": batch}
    return {"StartAt": "Fan", "States": {"Fan": state}}


def _handler(event: Any, context: Any) -> Any:
    """Exercises every way a lambda:invoke child can end."""
    value = event["Items"][0] if isinstance(event, dict) and "Items" in event else event
    value = value.get("v") if isinstance(value, dict) else value
    if value == "raise":
        raise ValueError("bad item")
    if value == "flaky":
        raise type("Flaky", (Exception,), {})("try again")
    if value == "big":
        return "x" * 300_000  # over 256 KiB: DataLimitExceeded
    if value == "not-json":
        return b"{nope"
    if value == "nothing":
        return None
    return {"seen": event}


@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("throttle", [0.0, 0.4])
@pytest.mark.parametrize("in_workers", [False, True], ids=["callable", "workers"])
def test_direct_one_task_children_match_the_interpreter(batch, throttle, in_workers):
    """Callable handlers run the direct children on threads; worker-served ones through the
    single-threaded InvocationDispatcher. Both end exactly as the interpreter does."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    handler: Any = "test_map_run._handler" if in_workers else _handler
    code_paths = [Path(__file__).parent] if in_workers else []

    # (a string child input is sent verbatim: not JSON, so Lambda refuses it)
    cases = ["raise", "flaky", "big", "not-json", "nothing", "é"]
    items = [1, "s", {"k": [1.5, None]}, *({"v": case} for case in cases), 7]
    results = []
    for identity_input_path in (False, True):
        runtime = LambdaRuntime(
            [FunctionSpec("f", handler, code_paths=code_paths, timeout_seconds=30)],
            throttle_rate=throttle,
            seed=3,
        )
        machine = _one_task_machine(items, batch=batch, retry=True, identity_input_path=identity_input_path)
        assert (runtime.dispatcher("f") is not None) == in_workers
        state = machine["States"]["Fan"]
        assert (direct_task(state["ItemProcessor"]) is None) == identity_input_path
        with runtime:
            result = execute(machine, {"items": items}, runtime=runtime, retry_time_scale=0, seed=5)
        stats = result.stats.as_dict()
        ended = json.dumps([result.status, result.error, result.cause, result.output, stats])
        # Request ids, child names and dates are fresh in every run.
        ended = re.sub(UUID, "<uuid>", ended)
        results.append(re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<date>", ended))
    direct, interpreted = (json.loads(ended) for ended in results)
    assert direct == interpreted
    status, _, _, output, stats = direct
    assert status == "SUCCEEDED" and stats["invocations"] >= len(items) // (batch or 1)
    if batch is None:
        errors = [child.get("Error") if isinstance(child, dict) else None for child in output]
        assert errors[1:8] == [
            "Lambda.InvalidRequestContentException",
            None,
            "ValueError",
            errors[4],  # always raises: Flaky after 3 retries (or throttled last)
            "States.DataLimitExceeded",
            "Lambda.Unknown",
            None,
        ]
        assert errors[4] in ("Flaky", "Lambda.TooManyRequestsException")
        assert output[7] is None and output[8] == {"seen": {"v": "é"}}


def _dying_handler(event: Any, context: Any) -> Any:
    """A worker-served handler that crashes its process or sleeps past its timeout on request."""
    import os as worker_os

    value = event["Items"][0]
    if value == "die":
        worker_os._exit(3)
    if value == "sleep":
        time.sleep(30)
    return value


def test_dispatched_children_survive_crashes_and_timeouts_and_resend_what_was_queued_behind():
    """One worker holds two invocations; the one queued behind a crash or a timeout never ran, so
    the dispatcher sends it again to the replacement worker and it succeeds."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    items = [1, "die", 2, 3, "sleep", 4, 5]
    spec = FunctionSpec(
        "f", "test_map_run._dying_handler", code_paths=[Path(__file__).parent], timeout_seconds=1
    )
    with LambdaRuntime([spec], workers=1) as runtime:
        machine = _one_task_machine(items, batch=1, retry=False, identity_input_path=False)
        machine["States"]["Fan"]["MaxConcurrency"] = 4
        result = execute(machine, {"items": items}, runtime=runtime, retry_time_scale=0)
        counters = runtime.counters
    assert result.status == "SUCCEEDED", result
    outcomes = [o.get("Error") if isinstance(o, dict) and "Error" in o else o for o in result.output]
    assert outcomes == [1, "Runtime.ExitError", 2, 3, "Sandbox.Timedout", 4, 5]
    assert (counters.crashes, counters.timeouts, counters.invocations) == (1, 1, 7)
    assert result.stats.as_dict()["failures"] == 2


def test_a_compact_json_array_of_integers_is_checked_not_parsed():
    """The start Lambda's size-job list ("[0,1,...]") reaches the batcher unparsed; any other
    array is parsed as before, with the same errors."""

    def read(data: bytes) -> list[Any]:
        return list(item_reader._json_items(io.BytesIO(data), unparsed_integers=True))

    (chunk,) = read(b"[0,1,-2,30]\n")
    assert isinstance(chunk, item_text.UnparsedIntegers) and chunk.parsed() == [0, 1, -2, 30]
    (chunk,) = read(b"[1, 2]")
    assert chunk.json_text == "1,2"
    assert read(b"[1 ,2]") == [[1, 2]]
    with pytest.raises(Exception, match="not valid JSON"):
        read(b"[1, 2 3]")  # "2 3" must not become 23
    assert read(b'[1,"a",null]') == [[1, "a", None]]
    assert read(b"[]") == []
    with pytest.raises(Exception, match="not valid JSON"):
        read(b"[01,2]")
    with pytest.raises(Exception, match="non-iterable"):
        read(b"{}")
