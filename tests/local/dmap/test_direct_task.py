"""The one-Task child run without the interpreter (burstmap.local.dmap.direct_task, on threads or through
the InvocationDispatcher in dispatch.py) ends exactly as the interpreter's child does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import direct_task_handlers
import pytest
from map_support import UUID

from burstmap.local.dmap.direct_task import direct_task


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


@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("throttle", [0.0, 0.4])
@pytest.mark.parametrize("in_workers", [False, True], ids=["callable", "workers"])
def test_direct_one_task_children_match_the_interpreter(batch, throttle, in_workers):
    """Callable handlers run the direct children on threads; worker-served ones through the
    single-threaded InvocationDispatcher. Both end exactly as the interpreter does."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    handler: Any = "direct_task_handlers.handler" if in_workers else direct_task_handlers.handler
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


@pytest.mark.parametrize("in_workers", [False, True], ids=["callable", "workers"])
def test_a_child_input_past_256_kib_fails_its_task_as_in_the_interpreter(in_workers):
    """Error-handling guide, States.DataLimitExceeded: "When, after Parameters processing, the input of
    a state is larger than the payload size quota". An ItemSelector that doubles an item makes the one
    child's input past 256 KiB: its Task fails with that error (without invoking), the others run."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    handler: Any = "direct_task_handlers.handler" if in_workers else direct_task_handlers.handler
    code_paths = [Path(__file__).parent] if in_workers else []
    items = [1, "x" * 140_000, 2]
    ended = []
    for identity_input_path in (False, True):
        machine = _one_task_machine(items, batch=None, retry=False, identity_input_path=identity_input_path)
        machine["States"]["Fan"]["ItemSelector"] = {"a.$": "$$.Map.Item.Value", "b.$": "$$.Map.Item.Value"}
        runtime = LambdaRuntime([FunctionSpec("f", handler, code_paths=code_paths, timeout_seconds=30)])
        runs: list[Any] = []
        with runtime:
            result = execute(
                machine,
                {"items": items},
                runtime=runtime,
                retry_time_scale=0,
                on_map_run=runs.append,
                keep_child_records=True,
            )
        (failed,) = runs[-1].ledger.newest_first("FAILED")
        counts = runs[-1].describe()["executionCounts"]
        invocations = result.stats.as_dict()["invocations"]
        ended.append((failed.sequence, failed.detail.error, failed.detail.cause, counts, invocations))
        # The map's own result holds the failed child's input (as AWS's does): past 256 KiB as well.
        assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert ended[0] == ended[1]
    sequence, error, cause, counts, invocations = ended[0]
    assert (sequence, error, invocations) == (1, "States.DataLimitExceeded", 2)
    assert (counts["succeeded"], counts["failed"]) == (2, 1)
    assert "'Compute'" in cause and "after Parameters processing" in cause


def test_dispatched_children_survive_crashes_and_timeouts_and_resend_what_was_queued_behind():
    """One worker holds two invocations; the one queued behind a crash or a timeout never ran, so
    the dispatcher sends it again to the replacement worker and it succeeds."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    items = [1, "die", 2, 3, "sleep", 4, 5]
    spec = FunctionSpec(
        "f", "direct_task_handlers.dying_handler", code_paths=[Path(__file__).parent], timeout_seconds=1
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
