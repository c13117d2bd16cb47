"""Memory and time through the S3 path, from 10,000 to 1,000,000 trivial items.

Each size runs in a fresh process (peak RSS is a per-process high-water mark): the item list, the
integers 0..N-1 as JSONL, is uploaded to the local S3 endpoint (burstmap.local.LocalS3, moto's server
in a child process); then the engine runs a distributed Map that reads it (ItemReader JSONL), batches
it (ItemBatcher, `--batch` items), sums each batch in a warm Lambda worker (bench/_trivial_compute.py)
and writes every child's record to S3 (ResultWriter, AWS's layout). The time is the execution's,
from `execute` to its result; the records are then read back and the sum checked exactly.

Peak RSS is read from /proc (VmHWM) just before the run's processes stop: the engine process, and
each of its children (the S3 server, the Lambda workers). `total` adds those peaks up, an upper bound
of what the run ever held at once.

    .venv/bin/python bench/million.py [--sizes 10000,100000,1000000] [--batch 1000] [--workers 2]

Last line: `1000000 items: W s, peak RSS M MB` (the largest size; target: under 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
BUCKET = "bench-million"
KEY = "items.jsonl"
FUNCTION = "trivial"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:111111111111:function:{FUNCTION}"


def definition(batch: int) -> dict[str, Any]:
    """Items from S3, batched, one Lambda invocation per batch, every record written to S3."""
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSONL"},
                    "Parameters": {"Bucket": BUCKET, "Key": KEY},
                },
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
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": BUCKET, "Prefix": "results"},
                },
                "End": True,
            }
        },
    }


def peak_rss_kib(pid: int | str) -> int:
    """VmHWM of a process, KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.append(int(entry.name))
                break
    return found


def run_one(size: int, batch: int, workers: int) -> dict[str, Any]:
    """One size in this process: upload, execute, measure, check."""
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime
    from burstmap.local.services.s3 import LocalS3

    with LocalS3() as server, tempfile.TemporaryFile() as items_file:
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)
        for start in range(0, size, 100_000):  # streamed to disk, never one string
            stop = min(size, start + 100_000)
            items_file.write("".join(f"{i}\n" for i in range(start, stop)).encode())
        items_file.seek(0)
        s3.upload_fileobj(items_file, BUCKET, KEY)
        spec = FunctionSpec(
            name=FUNCTION, handler="_trivial_compute.handler", code_paths=[BENCH_DIR], timeout_seconds=60
        )
        with LambdaRuntime([spec], workers=workers) as runtime:
            started = time.perf_counter()
            result = execute(definition(batch), {}, runtime=runtime, s3_client=s3)
            seconds = time.perf_counter() - started
            engine_kib = peak_rss_kib("self")
            children_kib = {pid: peak_rss_kib(pid) for pid in children_of(os.getpid())}
        if result.status != "SUCCEEDED":
            sys.exit(f"{size} items: {result.status} {result.error}: {result.cause}")
        manifest_location = result.output["ResultWriterDetails"]
        manifest = json.loads(
            s3.get_object(Bucket=manifest_location["Bucket"], Key=manifest_location["Key"])["Body"].read()
        )
        total = count = 0
        for entry in manifest["ResultFiles"]["SUCCEEDED"]:
            records = json.loads(s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read())
            total += sum(json.loads(record["Output"]) for record in records)
            count += sum(len(json.loads(record["Input"])["Items"]) for record in records)
        assert (total, count) == (size * (size - 1) // 2, size), (total, count)
    return {
        "size": size,
        "seconds": seconds,
        "engine_mb": engine_kib / 1024,
        "children_mb": sorted((kib / 1024 for kib in children_kib.values()), reverse=True),
        "total_mb": (engine_kib + sum(children_kib.values())) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.batch, args.workers)))
        return

    rows = []
    for size in (int(text) for text in args.sizes.split(",")):
        command = [sys.executable, __file__, "--one", str(size), "--batch", str(args.batch)]
        command += ["--workers", str(args.workers)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"size {size} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(f"batches of {args.batch} items, {args.workers} workers, ItemReader JSONL -> ResultWriter (NONE)")
    print(f"{'items':>9} {'seconds':>8} {'us/item':>8} {'engine MB':>10} {'children MB':>22} {'total MB':>9}")
    for row in rows:
        children = " ".join(f"{mb:.0f}" for mb in row["children_mb"])
        print(
            f"{row['size']:>9} {row['seconds']:>8.2f} {row['seconds'] / row['size'] * 1e6:>8.2f} "
            f"{row['engine_mb']:>10.1f} {children:>22} {row['total_mb']:>9.1f}"
        )
    last = rows[-1]
    print(f"{last['size']} items: {last['seconds']:.1f} s, peak RSS {last['total_mb']:.0f} MB")


if __name__ == "__main__":
    main()
