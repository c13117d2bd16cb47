"""Fan-out overhead against the peers, on the same trivial workload at 1,000 / 10,000 / 100,000 items.

The workload: the integers 0..N-1 in batches of `--batch`, each batch summed by
`bench/_trivial_compute.handler`; every side's total is checked exactly. Measured in one run,
sides alternating, best of `--repeats`:

- engine: burstmap's local engine, as bench/engine_overhead.py runs it (ItemReader JSONL from the
  local S3, ItemBatcher, the handler as a Lambda function in warm worker processes);
- pool: a bare `concurrent.futures.ProcessPoolExecutor.map` over the same batches (the limit);
- lithops: Lithops' localhost executor (`lithops.LocalhostExecutor`, backend and storage
  localhost, `--workers` worker processes) mapping the handler over the same batches;
- moto: moto 5's own Step Functions execution (`mock_aws` with
  `config={"stepfunctions": {"execute_state_machine": True}}`). moto runs Lambda functions only in
  Docker and refuses ItemBatcher, so its side is the most the same job can be there: a
  distributed Map over the items in the execution input with a Pass child per item (less work
  than the handler). The `engine-pass` row runs that very definition in the engine too, for a
  like-for-like figure. moto is slow (about 1 ms an item); it is not run past `--moto-max` items.

Workers (engine, pool, lithops) are started and warmed before the clock starts. Throughput ratio
= the peer's best time / the engine's best time at the same size.

    .venv/bin/python bench/peers.py [--sizes 1000,10000,100000] [--batch 1000] [--workers 2]

Last line: `engine/pool: A.AA  engine/lithops: B.BB  engine/moto: C.CC` at the largest size each
peer ran (n/a when it could not run). Targets: >= 0.7, >= 5, >= 50.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import engine_overhead as overhead  # noqa: E402 - the bench directory is put on sys.path just above
from _trivial_compute import handler  # noqa: E402

MOTO_ROLE = "arn:aws:iam::123456789012:role/bench"


def pass_map_definition() -> dict[str, Any]:
    """What moto can execute without Docker: a distributed Map of Pass children over $.items."""
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Pass",
                    "States": {"Pass": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }


def lithops_call(event: dict[str, Any]) -> int:
    return handler(event, None)


class LithopsSide:
    """Lithops' localhost executor, or the reason it cannot run here."""

    def __init__(self, workers: int) -> None:
        self.executor: Any = None
        self.error: str | None = None
        try:
            import lithops

            self.executor = lithops.LocalhostExecutor(
                config={
                    "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
                    "localhost": {"worker_processes": workers, "runtime": sys.executable},
                }
            )
            self.run([0, 1], 1)  # starts its runtime
        except Exception as exc:  # any reason: not installed, no runtime, ...
            self.error = f"{type(exc).__name__}: {exc}"
            self.executor = None

    def run(self, items: list[int], batch: int) -> tuple[float, int]:
        started = time.perf_counter()
        events = [({"Items": items[i : i + batch]},) for i in range(0, len(items), batch)]
        self.executor.map(lithops_call, events)
        total = sum(self.executor.get_result())
        return time.perf_counter() - started, total

    def close(self) -> None:
        if self.executor is not None:
            self.executor.clean()


def run_moto(items: list[int]) -> tuple[float, int]:
    """moto's own execution of the Pass map; the output must hold every item, in order."""
    import boto3
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="peers", definition=json.dumps(pass_map_definition()), roleArn=MOTO_ROLE
        )["stateMachineArn"]
        started = time.perf_counter()
        execution = client.start_execution(stateMachineArn=arn, input=json.dumps({"items": items}))
        while True:
            described = client.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING":
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
    if described["status"] != "SUCCEEDED":
        raise RuntimeError(f"moto: {described['status']} {described.get('error')} {described.get('cause')}")
    output = json.loads(described["output"])
    assert output == items, "moto's map output is not the items"
    return seconds, sum(output)


def run_engine_pass(items: list[int]) -> tuple[float, int]:
    from burstmap.local import execute

    started = time.perf_counter()
    result = execute(pass_map_definition(), {"items": items})
    seconds = time.perf_counter() - started
    assert result.status == "SUCCEEDED" and result.output == items, (result.status, result.error)
    return seconds, sum(result.output)


def best(run: Callable[[], tuple[float, int]], expected: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        seconds, total = run()
        assert total == expected, (total, expected)
        times.append(seconds)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--moto-max", type=int, default=10_000, help="largest size moto is given")
    args = parser.parse_args()

    from burstmap.local.services.s3 import LocalS3

    sizes = [int(text) for text in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    with LocalS3() as server:
        s3 = server.client()
        s3.create_bucket(Bucket=overhead.BUCKET)
        runtime = overhead.engine_runtime(args.workers)
        pool = ProcessPoolExecutor(max_workers=args.workers)
        lithops_side = LithopsSide(args.workers)
        try:
            s3.put_object(
                Bucket=overhead.BUCKET, Key=overhead.KEYS["JSONL"], Body=b"0\n1\n2\n3\n4\n5\n6\n7\n"
            )
            overhead._warm_engine(runtime, s3, args.workers, "JSONL")
            overhead._warm(pool, args.workers)
            for size in sizes:
                items = list(range(size))
                expected = size * (size - 1) // 2
                body = "\n".join(map(str, items)).encode()
                s3.put_object(Bucket=overhead.BUCKET, Key=overhead.KEYS["JSONL"], Body=body)
                row: dict[str, Any] = {"size": size}
                repeats = args.repeats
                row["engine"] = best(
                    lambda: overhead.run_engine(runtime, s3, args.batch, "JSONL", 0), expected, repeats
                )
                row["pool"] = best(
                    lambda items=items: overhead.run_pool(pool, items, args.batch, 0), expected, repeats
                )
                if lithops_side.executor is not None:
                    row["lithops"] = best(
                        lambda items=items: lithops_side.run(items, args.batch), expected, 1
                    )
                if size <= args.moto_max:
                    row["moto"] = best(lambda items=items: run_moto(items), expected, 1)
                    row["engine-pass"] = best(lambda items=items: run_engine_pass(items), expected, 1)
                rows.append(row)
        finally:
            runtime.close()
            pool.shutdown()
            lithops_side.close()

    print(
        f"batches of {args.batch} items, {args.workers} workers; seconds (best of {args.repeats}; "
        "lithops, moto and engine-pass: one run)"
    )
    sides = ["engine", "pool", "lithops", "moto", "engine-pass"]
    print(f"{'items':>7} " + " ".join(f"{side:>11}" for side in sides) + "   pool/eng lith/eng moto/eng")
    for row in rows:
        cells = " ".join(f"{row[side]:>11.3f}" if side in row else f"{'n/a':>11}" for side in sides)
        ratios = " ".join(
            f"{row[peer] / row['engine']:>8.2f}" if peer in row else f"{'n/a':>8}"
            for peer in ("pool", "lithops", "moto")
        )
        print(f"{row['size']:>7} {cells}   {ratios}")
    like_for_like = [row for row in rows if "moto" in row]
    for row in like_for_like:
        like = row["moto"] / row["engine-pass"]
        print(f"{row['size']:>7} items, the same Pass map in both: moto/engine-pass {like:.2f}")
    if lithops_side.error:
        print(f"lithops could not run: {lithops_side.error}")

    def figure(peer: str) -> str:
        measured = [row for row in rows if peer in row]
        if not measured:
            return "n/a"
        row = measured[-1]
        return f"{row[peer] / row['engine']:.2f}"

    print(
        f"engine/pool: {figure('pool')}  engine/lithops: {figure('lithops')}  engine/moto: {figure('moto')}"
    )


if __name__ == "__main__":
    main()
