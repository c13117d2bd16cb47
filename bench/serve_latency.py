"""Warm start-to-result through `burstmap serve`, against the same job through the Python API.

The job: a Distributed Map over 1,000 integers in the execution input (`ItemsPath`), batched
(`ItemBatcher.MaxItemsPerBatch`, default 50), each batch summed by `bench/_trivial_compute.handler` in
warm worker processes (EXPRESS children). Served: a LocalEndpoint runs in a child process, as
`burstmap serve` does, and a boto3 client in this process calls StartExecution, then DescribeExecution
every `--poll-ms` until the execution ends. In process: `burstmap.local.execute` with its own warm
LambdaRuntime, called from this process. Both sides run twice untimed first (workers started), then
`--repeats` times; runs alternate so both see the same machine state.

It also times one small S3 GetObject, straight to the local S3 server and through the endpoint's proxy.

    .venv/bin/python bench/serve_latency.py [--repeats 20] [--items 1000] [--batch 50] [--workers 2]

Last line: `warm start-to-result: P50 X ms, P95 Y ms; ratio to in-process run: R` (R = served P50 over
in-process P50; aim R <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

FUNCTION = "trivial"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:111111111111:function:{FUNCTION}"
MACHINE = "ServeLatency"
MACHINE_ARN = f"arn:aws:states:us-east-1:111111111111:stateMachine:{MACHINE}"
BUCKET = "serve-latency"


def definition(batch: int) -> dict[str, Any]:
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemBatcher": {"MaxItemsPerBatch": batch},
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Compute",
                    "States": {
                        "Compute": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": FUNCTION_ARN, "Payload.$": "$"},
                            "OutputPath": "$.Payload",
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }


def function_spec() -> Any:
    from burstmap.local.services.lambda_runtime import FunctionSpec

    return FunctionSpec(
        name=FUNCTION, handler="_trivial_compute.handler", code_paths=[BENCH_DIR], timeout_seconds=60
    )


def serve_in_child(connection: Any, batch: int, workers: int) -> None:
    """The server's process: one LocalEndpoint until the parent says stop."""
    from burstmap.serve.backend import StateMachineSpec
    from burstmap.serve.endpoint import LocalEndpoint

    machine = StateMachineSpec(
        MACHINE_ARN,
        MACHINE,
        definition(batch),
        "STANDARD",
        "arn:aws:iam::111111111111:role/bench",
        datetime.now(UTC),
    )
    endpoint = LocalEndpoint(
        [machine], functions=[function_spec()], buckets=[BUCKET], port=0, workers=workers
    )
    endpoint.start()
    try:
        connection.send((endpoint.url, endpoint.s3.endpoint_url))
        connection.recv()
    finally:
        endpoint.stop()


def served_run(sfn: Any, execution_input: str, poll_seconds: float) -> tuple[float, Any]:
    started = time.perf_counter()
    arn = sfn.start_execution(stateMachineArn=MACHINE_ARN, input=execution_input)["executionArn"]
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        time.sleep(poll_seconds)
    seconds = time.perf_counter() - started
    if described["status"] != "SUCCEEDED":
        sys.exit(f"served run {described['status']}: {described.get('error')}: {described.get('cause')}")
    return seconds, json.loads(described["output"])


def in_process_run(runtime: Any, machine: dict[str, Any], execution_input: Any) -> tuple[float, Any]:
    from burstmap.local import execute

    started = time.perf_counter()
    result = execute(machine, execution_input, runtime=runtime)
    seconds = time.perf_counter() - started
    if result.status != "SUCCEEDED":
        sys.exit(f"in-process run {result.status}: {result.error}: {result.cause}")
    return seconds, result.output


def s3_latency(s3_direct: Any, s3_served: Any, count: int) -> tuple[float, float]:
    """P50 ms of one small GetObject: straight to the S3 server, and through the endpoint."""
    s3_direct.put_object(Bucket=BUCKET, Key="small.json", Body=b'{"x": 1}')
    times: dict[str, list[float]] = {"direct": [], "served": []}
    for _ in range(count):
        for name, s3 in (("direct", s3_direct), ("served", s3_served)):
            started = time.perf_counter()
            s3.get_object(Bucket=BUCKET, Key="small.json")["Body"].read()
            times[name].append(time.perf_counter() - started)
    return statistics.median(times["direct"]) * 1000, statistics.median(times["served"]) * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--poll-ms", type=float, default=1.0, help="DescribeExecution interval of the client")
    args = parser.parse_args()

    import boto3
    from botocore.config import Config

    from burstmap.local.services.lambda_runtime import LambdaRuntime

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)
    items = list(range(args.items))
    execution_input = {"items": items}
    expected = [sum(items[i : i + args.batch]) for i in range(0, len(items), args.batch)]

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve_in_child, args=(child, args.batch, args.workers), daemon=True)
    started = time.perf_counter()
    server.start()
    url, s3_url = parent.recv()
    print(f"server started in {time.perf_counter() - started:.1f} s at {url}", file=sys.stderr)
    config = Config(retries={"mode": "standard"}, tcp_keepalive=True)
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1", config=config)
    runtime = LambdaRuntime([function_spec()], workers=args.workers)
    machine = definition(args.batch)
    text = json.dumps(execution_input)
    served_times, local_times = [], []
    try:
        for round_number in range(args.repeats + 2):
            seconds, output = served_run(sfn, text, args.poll_ms / 1000)
            assert output == expected, "the served job summed wrong"
            if round_number >= 2:
                served_times.append(seconds)
            seconds, output = in_process_run(runtime, machine, execution_input)
            assert output == expected, "the in-process job summed wrong"
            if round_number >= 2:
                local_times.append(seconds)
        served_s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config)
        direct_s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", config=config)
        s3_latency(direct_s3, served_s3, 5)  # connections opened
        direct_ms, proxied_ms = s3_latency(direct_s3, served_s3, 200)
    finally:
        runtime.close()
        parent.send("stop")
        server.join(timeout=60)

    p50, p95 = percentile(served_times, 0.5) * 1000, percentile(served_times, 0.95) * 1000
    local_p50 = percentile(local_times, 0.5) * 1000
    print(f"in-process run: P50 {local_p50:.1f} ms, P95 {percentile(local_times, 0.95) * 1000:.1f} ms")
    print(
        f"S3 GetObject (8 bytes): direct P50 {direct_ms:.2f} ms, through the endpoint P50 {proxied_ms:.2f} ms"
    )
    ratio = p50 / local_p50
    print(f"warm start-to-result: P50 {p50:.1f} ms, P95 {p95:.1f} ms; ratio to in-process run: {ratio:.2f}")


if __name__ == "__main__":
    main()
