"""Warm start-to-result through `burstmap serve`, against the same job through the Python API.

The job: a Distributed Map over 1,000 integers in the execution input (`ItemsPath`), batched
(`ItemBatcher.MaxItemsPerBatch`, default 50), each batch summed by `bench/_trivial_compute.handler` in
warm worker processes (EXPRESS children). Served: a LocalEndpoint runs in a child process, as
`burstmap serve` does, and a boto3 client in this process calls StartExecution, then DescribeExecution
every `--poll-ms` until the execution ends. In process (the baseline): the same definition and the same
function through `burstmap.local.execute`, with a warm LambdaRuntime of the same worker count, called
from this process. Both sides run twice untimed first (workers started), then `--repeats` times; runs
alternate so both see the same machine state.

A trivial job of a few milliseconds is mostly fixed cost: the client's calls (botocore spends about a
millisecond building, signing and parsing each one) and the polling interval. So it also measures a larger
batched job (`--large-items` integers in batches of `--large-batch`, each item `--large-work`
multiply-adds), where the work is no longer negligible; and one small S3 GetObject, straight to the local
S3 server and through the endpoint's proxy.

    .venv/bin/python bench/serve_latency.py [--repeats 20] [--items 1000] [--batch 50] [--workers 2]

Last line: `warm start-to-result: P50 X ms, P95 Y ms; ratio to in-process run: R` for the 1,000-item job
(R = served P50 over in-process P50; the issue aims at R <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

FUNCTION = "trivial"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:111111111111:function:{FUNCTION}"
MACHINE = "ServeLatency"
MACHINE_ARN = f"arn:aws:states:us-east-1:111111111111:stateMachine:{MACHINE}"
LARGE_MACHINE = "ServeLatencyLarge"
LARGE_MACHINE_ARN = f"arn:aws:states:us-east-1:111111111111:stateMachine:{LARGE_MACHINE}"
BUCKET = "serve-latency"
POLL_SHARE = 0.02
LARGE_INPUT_CHARS = 32_000
"""Past this, the client polls with includedData METADATA_ONLY (no input and output in each answer)."""
"""The client polls at most every --poll-ms, and no more often than every 2% of the time so far."""
BASELINE = (
    "in-process baseline: the same definition and function through burstmap.local.execute, with a warm "
    "LambdaRuntime of {workers} workers, in this process"
)


def definition(batch: int, work: int = 0) -> dict[str, Any]:
    batcher: dict[str, Any] = {"MaxItemsPerBatch": batch}
    if work:
        batcher["BatchInput"] = {"work": work}
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemBatcher": batcher,
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


def serve_in_child(connection: Any, machines: list[tuple[str, str, dict[str, Any]]], workers: int) -> None:
    """The server's process: one LocalEndpoint until the parent says stop."""
    from burstmap.serve.backend import StateMachineSpec
    from burstmap.serve.endpoint import LocalEndpoint

    specs = [
        StateMachineSpec(
            arn, name, machine, "STANDARD", "arn:aws:iam::111111111111:role/bench", datetime.now(UTC)
        )
        for arn, name, machine in machines
    ]
    endpoint = LocalEndpoint(specs, functions=[function_spec()], buckets=[BUCKET], port=0, workers=workers)
    endpoint.start()
    try:
        connection.send((endpoint.url, endpoint.s3.endpoint_url))
        connection.recv()
    finally:
        endpoint.stop()


@dataclass
class Served:
    """One served run: its time and where it went."""

    seconds: float
    output: Any
    start_call: float
    """The StartExecution round trip."""
    in_server: float
    """From the execution's startDate to its stopDate, as the server recorded them (ms precision)."""
    polls: int


def served_run(sfn: Any, machine_arn: str, execution_input: str, poll_seconds: float) -> Served:
    """Start, then DescribeExecution until the end: every `poll_seconds` at first, then every 2% of the
    time so far (a client that polls a long job every millisecond mostly measures its own polling)."""
    started = time.perf_counter()
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=execution_input)["executionArn"]
    start_call = time.perf_counter() - started
    # A large input would come back with every answer: poll for the status alone, then read the output.
    data = "METADATA_ONLY" if len(execution_input) > LARGE_INPUT_CHARS else "ALL_DATA"
    polls = 1
    while (described := sfn.describe_execution(executionArn=arn, includedData=data))["status"] == "RUNNING":
        time.sleep(max(poll_seconds, POLL_SHARE * (time.perf_counter() - started)))
        polls += 1
    if data == "METADATA_ONLY":
        described = sfn.describe_execution(executionArn=arn)
        polls += 1
    seconds = time.perf_counter() - started
    if described["status"] != "SUCCEEDED":
        sys.exit(f"served run {described['status']}: {described.get('error')}: {described.get('cause')}")
    in_server = (described["stopDate"] - described["startDate"]).total_seconds()
    return Served(seconds, json.loads(described["output"]), start_call, in_server, polls)


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


def compare(
    sfn: Any,
    runtime: Any,
    machine_arn: str,
    machine: dict[str, Any],
    items: list[int],
    expected: list[int],
    repeats: int,
    poll_seconds: float,
) -> tuple[list[Served], list[float]]:
    """Served runs and in-process times (seconds) of the same job, alternating, after two untimed rounds."""
    execution_input = {"items": items}
    text = json.dumps(execution_input)
    served_runs, local_times = [], []
    for round_number in range(repeats + 2):
        served = served_run(sfn, machine_arn, text, poll_seconds)
        assert served.output == expected, "the served job summed wrong"
        if round_number >= 2:
            served_runs.append(served)
        seconds, output = in_process_run(runtime, machine, execution_input)
        assert output == expected, "the in-process job summed wrong"
        if round_number >= 2:
            local_times.append(seconds)
    return served_runs, local_times


def expected_sums(items: list[int], batch: int, work: int) -> list[int]:
    from _trivial_compute import handler

    return [
        handler({"Items": items[i : i + batch], "BatchInput": {"work": work}}, None)
        for i in range(0, len(items), batch)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--poll-ms", type=float, default=1.0, help="DescribeExecution interval of the client")
    parser.add_argument("--large-items", type=int, default=20000)
    parser.add_argument("--large-batch", type=int, default=500)
    parser.add_argument("--large-work", type=int, default=100, help="multiply-adds per item")
    parser.add_argument("--large-repeats", type=int, default=10)
    args = parser.parse_args()

    import boto3
    from botocore.config import Config

    from burstmap.local.services.lambda_runtime import LambdaRuntime

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)
    small = definition(args.batch)
    large = definition(args.large_batch, args.large_work)
    machines = [(MACHINE_ARN, MACHINE, small), (LARGE_MACHINE_ARN, LARGE_MACHINE, large)]

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve_in_child, args=(child, machines, args.workers), daemon=True)
    started = time.perf_counter()
    server.start()
    url, s3_url = parent.recv()
    print(f"server started in {time.perf_counter() - started:.1f} s at {url}", file=sys.stderr)
    config = Config(retries={"mode": "standard"}, tcp_keepalive=True)
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1", config=config)
    runtime = LambdaRuntime([function_spec()], workers=args.workers)
    poll = args.poll_ms / 1000
    try:
        items = list(range(args.items))
        served, local = compare(
            sfn, runtime, MACHINE_ARN, small, items, expected_sums(items, args.batch, 0), args.repeats, poll
        )
        large_items = list(range(args.large_items))
        large_expected = expected_sums(large_items, args.large_batch, args.large_work)
        served_large, local_large = compare(
            sfn, runtime, LARGE_MACHINE_ARN, large, large_items, large_expected, args.large_repeats, poll
        )
        served_s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config)
        direct_s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", config=config)
        s3_latency(direct_s3, served_s3, 5)  # connections opened
        direct_ms, proxied_ms = s3_latency(direct_s3, served_s3, 200)
    finally:
        runtime.close()
        parent.send("stop")
        server.join(timeout=60)

    def line(label: str, runs: list[Served], local_times: list[float]) -> str:
        served_times = [run.seconds for run in runs]
        p50, p95 = percentile(served_times, 0.5) * 1000, percentile(served_times, 0.95) * 1000
        local_p50 = percentile(local_times, 0.5) * 1000
        return (
            f"{label}: served P50 {p50:.1f} ms, P95 {p95:.1f} ms (StartExecution "
            f"{percentile([r.start_call for r in runs], 0.5) * 1000:.1f} ms, start to stop in the server "
            f"{percentile([r.in_server for r in runs], 0.5) * 1000:.0f} ms, "
            f"{percentile([r.polls for r in runs], 0.5):.0f} DescribeExecution); "
            f"in-process P50 {local_p50:.1f} ms, "
            f"P95 {percentile(local_times, 0.95) * 1000:.1f} ms; ratio {p50 / local_p50:.2f}"
        )

    print(BASELINE.format(workers=args.workers))
    print(
        f"client: boto3, DescribeExecution every {args.poll_ms:g} ms or every 2% of the time so far, "
        f"whichever is longer; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        line(
            f"larger job ({args.large_items} items, batches of {args.large_batch}, work {args.large_work})",
            served_large,
            local_large,
        )
    )
    print(
        f"S3 GetObject (8 bytes): direct P50 {direct_ms:.2f} ms, through the endpoint P50 {proxied_ms:.2f} ms"
    )
    print(line(f"{args.items}-item job (batches of {args.batch})", served, local))
    times = [run.seconds for run in served]
    p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
    ratio = p50 / (percentile(local, 0.5) * 1000)
    print(f"warm start-to-result: P50 {p50:.1f} ms, P95 {p95:.1f} ms; ratio to in-process run: {ratio:.2f}")


if __name__ == "__main__":
    main()
