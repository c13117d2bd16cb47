"""Fan-out overhead: the local engine's distributed Map vs a bare ProcessPoolExecutor, side by side.

Both sides make the same handler calls with the same chunking: N integers in batches of B, each batch
summed by `bench/_trivial_compute.handler` (so the work itself is negligible and what is measured is
the fan-out). The engine reads the items from its loopback S3 (ItemReader, JSONL), batches them
(ItemBatcher), invokes the handler as a Lambda function in warm worker processes and collects the
results; the pool calls the handler on the same batches with `ProcessPoolExecutor.map`.

Both sides start their worker processes before the clock starts and warm them with one call each
(the engine's workers are fresh interpreters, the pool's are forks: start-up is not fan-out, and is
printed apart). Each run is then timed from the first item read (the engine) or the first event
built (the pool) to having every result; runs alternate between the sides and the best of
`--repeats` is kept for each.

    .venv/bin/python bench/engine_overhead.py [--items 100000] [--batch 1000] [--workers 2] [--selector]

`--selector` adds the ItemSelector shape of the construct's maps (each item becomes
{"item": value, "index": index}); the pool side then builds the same objects for its batches.

Last line: `engine/pool throughput ratio: X.XX` (target >= 0.70 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _trivial_compute import handler, handler_selected  # noqa: E402 - the bench directory is put on sys.path just above

BUCKET = "bench-items"
KEYS = {"JSONL": "items.jsonl", "JSON": "items.json"}
FUNCTION = "trivial"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:111111111111:function:{FUNCTION}"


SELECTOR = {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}
"""The construct's ItemSelector, less its `parameters` field (this map has no parameters)."""


def definition(batch: int, input_type: str, work: int, *, selector: bool = False) -> dict[str, Any]:
    """A distributed Map over a JSONL list in S3, batched, one Lambda invocation per batch."""
    compute = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": FUNCTION_ARN, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    fan_out: dict[str, Any] = {"ItemSelector": SELECTOR} if selector else {}
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                **fan_out,
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": input_type},
                    "Parameters": {"Bucket": BUCKET, "Key": KEYS[input_type]},
                },
                "ItemBatcher": {"MaxItemsPerBatch": batch, "BatchInput": {"work": work}},
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Compute",
                    "States": {"Compute": compute},
                },
                "End": True,
            }
        },
    }


def _call(event: dict[str, Any]) -> int:
    return handler(event, None)


def _call_selected(event: dict[str, Any]) -> int:
    return handler_selected(event, None)


def _warm(pool: ProcessPoolExecutor, workers: int) -> None:
    """Start every pool worker (a pool starts processes as work arrives)."""
    list(pool.map(_call, [{"Items": [0]}] * (4 * workers)))


def run_pool(
    pool: ProcessPoolExecutor, items: list[int], batch: int, work: int, *, selector: bool = False
) -> tuple[float, int]:
    started = time.perf_counter()
    if selector:
        selected = [{"item": value, "index": index} for index, value in enumerate(items)]
        events = [
            {"Items": selected[i : i + batch], "BatchInput": {"work": work}}
            for i in range(0, len(items), batch)
        ]
        total = sum(pool.map(_call_selected, events))
        return time.perf_counter() - started, total
    events = [
        {"Items": items[i : i + batch], "BatchInput": {"work": work}} for i in range(0, len(items), batch)
    ]
    total = sum(pool.map(_call, events))
    return time.perf_counter() - started, total


def engine_runtime(workers: int, *, selector: bool = False) -> Any:
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    spec = FunctionSpec(
        name=FUNCTION,
        handler="_trivial_compute.handler_selected" if selector else "_trivial_compute.handler",
        code_paths=[BENCH_DIR],
        environment={},
        timeout_seconds=60,
    )
    return LambdaRuntime([spec], workers=workers)


def run_engine(
    runtime: Any, s3_client: Any, batch: int, input_type: str, work: int, *, selector: bool = False
) -> tuple[float, int]:
    from burstmap.local import execute

    started = time.perf_counter()
    machine = definition(batch, input_type, work, selector=selector)
    result = execute(machine, {}, runtime=runtime, s3_client=s3_client)
    seconds = time.perf_counter() - started
    if result.status != "SUCCEEDED":
        sys.exit(f"engine run {result.status}: {result.error}: {result.cause}")
    return seconds, sum(result.output)


def _warm_engine(
    runtime: Any, s3_client: Any, workers: int, input_type: str, *, selector: bool = False
) -> None:
    """One small run with as many batches as workers, so every worker process is started."""
    from burstmap.local import execute

    warm = definition(1, input_type, 0, selector=selector)
    warm["States"]["FanOut"]["ItemReader"]["ReaderConfig"]["MaxItems"] = 4 * workers
    result = execute(warm, {}, runtime=runtime, s3_client=s3_client)
    assert result.status == "SUCCEEDED", result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--input-type", choices=sorted(KEYS), default="JSONL", help="ItemReader InputType")
    parser.add_argument("--work", type=int, default=0, help="multiply-adds per item (0: pure fan-out)")
    parser.add_argument("--selector", action="store_true", help="the construct's ItemSelector shape")
    args = parser.parse_args()

    from burstmap.local.services.s3 import LocalS3

    items = list(range(args.items))
    expected = handler({"Items": items, "BatchInput": {"work": args.work}}, None)
    with LocalS3() as s3_server:
        s3 = s3_server.client()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEYS["JSONL"], Body="\n".join(json.dumps(i) for i in items).encode())
        s3.put_object(Bucket=BUCKET, Key=KEYS["JSON"], Body=json.dumps(items).encode())
        engine_times, pool_times = [], []
        started = time.perf_counter()
        runtime = engine_runtime(args.workers, selector=args.selector)
        _warm_engine(runtime, s3, args.workers, args.input_type, selector=args.selector)
        engine_start = time.perf_counter() - started
        started = time.perf_counter()
        pool = ProcessPoolExecutor(max_workers=args.workers)
        _warm(pool, args.workers)
        pool_start = time.perf_counter() - started
        try:
            for _ in range(args.repeats):  # interleaved, so both sides see the same machine state
                seconds, total = run_engine(
                    runtime, s3, args.batch, args.input_type, args.work, selector=args.selector
                )
                assert total == expected, (total, expected)
                engine_times.append(seconds)
                seconds, total = run_pool(pool, items, args.batch, args.work, selector=args.selector)
                assert total == expected, (total, expected)
                pool_times.append(seconds)
        finally:
            runtime.close()
            pool.shutdown()

    engine, pool = min(engine_times), min(pool_times)
    batches = -(-args.items // args.batch)
    print(f"{args.items} items in {batches} batches of {args.batch}, {args.workers} workers", end=", ")
    shape = ", ItemSelector {item, index}" if args.selector else ""
    print(f"best of {args.repeats}, ItemReader {args.input_type}{shape}, work {args.work} per item")
    print(f"{'side':<8} {'start (s)':>9} {'best (s)':>9} {'items/s':>12}  runs (s)")
    for name, start, best, runs in (
        ("engine", engine_start, engine, engine_times),
        ("pool", pool_start, pool, pool_times),
    ):
        print(
            f"{name:<8} {start:>9.3f} {best:>9.3f} {args.items / best:>12.0f}  "
            + " ".join(f"{t:.3f}" for t in runs)
        )
    print(f"engine/pool throughput ratio: {pool / engine:.2f}")


if __name__ == "__main__":
    main()
