"""A distributed Map run (burstmap.local.dmap.map_run): items from the state input and their
ItemSelector, the child context, tolerated failures, concurrency and memory, and the AWS-recorded
single-map cases. Child executions are plain Python callables standing in for the interpreter's
`run_child`; S3 is moto's in-process mock."""

from __future__ import annotations

import gc
import io
import json
import re
import threading
import time
import tracemalloc
from typing import Any

import pytest
from map_support import BUCKET, CONTEXT, UUID, WRITER, distributed, echo, failing_on, reader, run, services

from burstmap.local.core.errors import StateRuntimeError, runtime_cause
from burstmap.local.dmap.map_run import run_distributed_map
from burstmap.local.dmap.settings import validate_distributed_map
from tests.local.conformance_harness import CONFORMANCE_DIR


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


def test_items_path_to_a_scalar_fails_with_states_runtime():
    """(A JSON object is refused as not supported locally: test_jsonata_states.py.)"""
    for scalar in ("abc", 1, None):
        with pytest.raises(Exception) as failure:
            run(distributed(ItemsPath="$.x"), {"x": scalar})
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
    # The state runner (states/interpreter.py) prefixes States.Runtime causes with the state and event id.
    assert isinstance(failure.value, StateRuntimeError)
    assert (failure.value.error, failure.value.cause) == ("States.Runtime", cause)


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


CONFORMANCE = CONFORMANCE_DIR / "cases"


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
