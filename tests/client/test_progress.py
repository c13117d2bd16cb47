"""The progress line counts what max_concurrency bounds: child executions, not the items in their batches."""

from __future__ import annotations

import time
from typing import Any

from burstmap.client.progress import describe
from burstmap.local import execute
from burstmap.local.core.progress import Progress

FUNCTION = "arn:aws:lambda:us-east-1:111111111111:function:slow"


def batched_map(max_concurrency: int, batch: int) -> dict[str, Any]:
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "ItemBatcher": {"MaxItemsPerBatch": batch},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": FUNCTION, "End": True}},
                },
                "End": True,
            }
        },
    }


def slow(event: dict[str, Any], context: Any) -> list[Any]:
    time.sleep(0.02)
    return event["Items"]


def test_children_running_never_exceed_max_concurrency_while_items_running_do() -> None:
    seen: list[Progress] = []
    result = execute(
        batched_map(max_concurrency=2, batch=10),
        {"items": list(range(200))},
        functions={FUNCTION: slow},
        max_workers=4,
        on_progress=seen.append,
    )
    assert result.status == "SUCCEEDED", result.cause
    assert 1 <= max(p.children_running or 0 for p in seen) <= 2
    assert max(p.running for p in seen) > 2  # the items of two running batches
    for progress in seen:
        shown = describe(progress).split(", ")[2]
        assert shown == f"{progress.children_running} running" and progress.children_running <= 2


def test_a_progress_without_child_counts_says_it_counts_items() -> None:
    line = describe(Progress(total=4, succeeded=1, running=3, elapsed_seconds=1.0))
    assert line == "1/4 items (25.0%), 1.0 items/s, 3 items running, 0 retries, 0 failed, 1.0s"


def test_describe_map_run_counts_give_children_from_execution_counts() -> None:
    progress = Progress.of_map_runs(
        [{"total": 100, "running": 40, "succeeded": 10}, {"total": 50, "running": 10}],
        elapsed_seconds=5.0,
        execution_counts=[{"running": 4}, {"running": 1}],
    )
    assert (progress.running, progress.children_running) == (50, 5)
    assert ", 5 running, " in describe(progress)
