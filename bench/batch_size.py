"""Which default ``batch_size`` pays: the same jobs at batch sizes 1, 10, 50, 100 and 500.

Two workloads run through the example app's synthesized state machine on the local engine (start ->
Choice -> Distributed Map with the construct's ItemSelector / ItemBatcher / ResultWriter -> combine, real
handlers, loopback S3), once per batch size:

* ``example``: the seed workload (``lambdas/example_compute``) via ``burstmap.client.run_local``, at
  ``--example-sizes`` (default 1,024). Its results are exact integers of up to ~2.2 digits per byte count,
  so a batch's output (the list of its results, one child's state output) grows with the batch; past
  256 KiB the child fails with ``States.DataLimitExceeded``. Rows whose largest batch output would pass
  256 KiB are predicted and shown as ``skip``, except where ``--run-oversized`` runs them to show it.
* ``trivial``: ``2 * item`` per item (``trivial_handler`` below) at ``--trivial-items`` (default 10,000;
  100,000 takes a minute at batch 1 on 2 cores): the fan-out cost alone, from the same state machine
  with only the compute function swapped.

Columns: children (= compute invocations), local run seconds (state machine only, best of
``--repeats``), items/s, the compute time per item measured in-process with the handler on the same
batches (what Lambda would bill), and the AWS estimate of ``burstmap.client.plan`` for the job (Standard
child executions: a transition to start each child + one per child state; Lambda requests; GB-seconds
at the example compute's 1,769 MB on arm64) and per million items.

    .venv/bin/python bench/batch_size.py [--example-sizes 1024] [--trivial-items 10000] [--repeats 1]

Last line: ``default batch_size: B`` — for each workload and each of two figures (local run time per
item, AWS cost per item), the smallest batch size that captures 95 % of what batching saves over batch 1
against the best measured size (the saving flattens out past it); B is the largest of these.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from burstmap.runtime.compute import compute_handler

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
BATCH_SIZES = (1, 10, 50, 100, 500)
STATE_OUTPUT_LIMIT = 256 * 1024
COMPUTE_MEMORY_MB = 1769  # infra/stack.py: the example compute's memory (one full vCPU)
CAPTURED = 0.95

sys.set_int_max_str_digits(0)  # the example totals run to tens of thousands of digits


def _double(item: Any, parameters: dict[str, Any]) -> int:  # noqa: ARG001 - the compute contract
    return 2 * item


trivial_handler = compute_handler(_double)
"""The trivial compute: imported by name (``batch_size.trivial_handler``) in the engine's workers."""


@dataclass
class Row:
    workload: str
    items: int
    batch: int
    status: str
    children: int | None = None
    run_s: float | None = None
    compute_ms_per_item: float | None = None
    cost_usd: Decimal | None = None
    transitions: int | None = None
    note: str = ""

    @property
    def items_per_s(self) -> float | None:
        return self.items / self.run_s if self.run_s else None

    @property
    def cost_per_million(self) -> Decimal | None:
        return None if self.cost_usd is None else self.cost_usd * 1_000_000 / self.items


# ---------------------------------------------------------------------------------------------- measuring


def batches(items: int, batch: int) -> list[list[int]]:
    return [list(range(start, min(items, start + batch))) for start in range(0, items, batch)]


def event_of(batch_items: list[int], batch: int) -> dict[str, Any]:
    """The compute event the construct's ItemSelector / ItemBatcher make for these items."""
    if batch == 1:
        return {"item": batch_items[0], "index": batch_items[0], "parameters": {}}
    return {"Items": [{"item": i, "index": i} for i in batch_items], "BatchInput": {"parameters": {}}}


def handler_time_ms(handler: Any, items: int, batch: int) -> float:
    """In-process compute time per item on the job's batches (one warm process, like a warm Lambda)."""
    started = time.perf_counter()
    for batch_items in batches(items, batch):
        handler(event_of(batch_items, batch), None)
    return (time.perf_counter() - started) * 1000 / items


def example_largest_output(items: int, batch: int) -> int:
    """Bytes of JSON of the last (largest) batch's results: the biggest child output of the job."""
    from burstmap.runtime.contracts import json_size

    sys.path.insert(0, str(PROJECT_DIR / "lambdas" / "example_compute"))
    from handler import count_strings  # the example compute module, as Lambda imports it

    digits = len(str(count_strings(items - 1)))
    last = min(batch, items)
    sample = [("9" * digits)] * last if batch > 1 else "9" * digits
    return json_size(sample)


def aws_estimate(
    items: int, batch: int, ms_per_item: float, definition: dict[str, Any]
) -> tuple[Decimal, int]:
    from burstmap.client.plan import plan_job, shape_from_definition

    plan = plan_job(
        items=items,
        batch_size=batch,
        duration_ms=ms_per_item,
        memory_mb=COMPUTE_MEMORY_MB,
        architecture="arm64",
        shape=shape_from_definition(definition),
    )
    return plan.cost_total, plan.state_transitions


def run_example(size: int, batch: int, repeats: int, run_oversized: bool) -> Row:
    from burstmap.client import run_local
    from burstmap.client.local_app import prepare_app

    sys.path.insert(0, str(PROJECT_DIR / "lambdas" / "example_compute"))
    from handler import handler

    largest = example_largest_output(size, batch)
    oversized = largest > STATE_OUTPUT_LIMIT
    row = Row("example", size, batch, "skip")
    if oversized:
        row.note = f"largest batch output ~{largest // 1024} KiB > 256 KiB"
        if not run_oversized:
            return row
    runs = []
    for _ in range(repeats):
        result = run_local(size=size, batch_size=batch, stats=True, app_dir=PROJECT_DIR)
        row.status = result.status if result.succeeded else f"{result.status}"
        if not result.succeeded:
            row.note = f"{result.error}" + (f"; {row.note}" if row.note else "")
        runs.append(result.stats["run_seconds"])
        row.children = result.stats["invocations"] - 2  # start and combine
        if not result.succeeded:
            break
        expected = reference_total(size)
        if result.output.get("total_sum") != str(expected):
            sys.exit(f"example {size} batch {batch}: wrong total {result.output.get('total_sum')[:40]}...")
    row.run_s = min(runs)
    row.compute_ms_per_item = handler_time_ms(handler, size, batch)
    definition = batched_definition(prepare_app(PROJECT_DIR), batch)
    row.cost_usd, row.transitions = aws_estimate(size, batch, row.compute_ms_per_item, definition)
    return row


def batched_definition(app: Any, batch: int) -> dict[str, Any]:
    """The app's state machine definition at this batch size, as `burstmap run --batch-size` runs it."""
    from burstmap.client.map_overrides import MapOverrides, apply_map_overrides

    (machine,) = app.state_machines
    return apply_map_overrides(machine.definition, MapOverrides(batch_size=batch), state_machine=machine.name)


def reference_total(size: int) -> int:
    """sum of a(i), i < size, by the recurrence (independent of the handler's jump)."""
    window = [0, 0, 0, 0]
    total = 0
    for i in range(size):
        current = 1 if i == 0 else 128 * window[3] + 1863 * window[2] + 42451 * window[1] + 78341 * window[0]
        total += current
        window = [window[1], window[2], window[3], current]
    return total


def run_trivial(items: int, batch: int, repeats: int) -> Row:
    """The example app's state machine at this batch size, with the compute function swapped."""
    from burstmap.client.local_app import function_spec, prepare_app
    from burstmap.local import execute
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime
    from burstmap.local.services.s3 import LocalS3

    app = prepare_app(PROJECT_DIR)
    definition = batched_definition(app, batch)
    compute = next(fn for fn in app.functions if "ExampleCompute" in fn.logical_id)
    specs = [function_spec(fn) for fn in app.functions if fn is not compute]
    specs.append(
        FunctionSpec(
            name=compute.name,
            handler="batch_size.trivial_handler",
            code_paths=[BENCH_DIR, *compute.code_paths[1:]],  # the bench module, then the layer
            environment=dict(compute.environment),
            timeout_seconds=compute.timeout_seconds,
            memory_mb=compute.memory_mb,
        )
    )
    row = Row("trivial", items, batch, "")
    runs = []
    with ExitStack() as stack:
        s3 = stack.enter_context(LocalS3())
        for bucket in app.buckets:
            s3.ensure_bucket(bucket.name)
        runtime = stack.enter_context(closing(LambdaRuntime(specs, extra_env=s3.env())))
        for _ in range(repeats):
            started = time.perf_counter()
            result = execute(definition, {"size": items}, runtime=runtime, s3_client=s3.client())
            runs.append(time.perf_counter() - started)
            row.status = result.status
            if result.status != "SUCCEEDED":
                row.note = f"{result.error}: {str(result.cause)[:80]}"
                break
            if result.output["total_sum"] != str(items * (items - 1)):
                sys.exit(f"trivial {items} batch {batch}: wrong total {result.output['total_sum']}")
            row.children = result.stats.as_dict()["invocations"] - 2
    row.run_s = min(runs)
    row.compute_ms_per_item = handler_time_ms(trivial_handler, items, batch)
    row.cost_usd, row.transitions = aws_estimate(items, batch, row.compute_ms_per_item, definition)
    return row


# ---------------------------------------------------------------------------------------------- report


def render(rows: list[Row]) -> str:
    header = (
        f"{'workload':<8} {'items':>7} {'batch':>5} {'status':>9} {'children':>8} {'run s':>7} "
        f"{'items/s':>8} {'ms/item':>8} {'transitions':>11} {'AWS $/job':>10} {'AWS $/1M items':>14}  note"
    )
    lines = [header]
    for r in rows:

        def fmt(value: Any, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        lines.append(
            f"{r.workload:<8} {r.items:>7} {r.batch:>5} {r.status:>9} {fmt(r.children, 'd'):>8} "
            f"{fmt(r.run_s, '.2f'):>7} {fmt(r.items_per_s, '.0f'):>8} {fmt(r.compute_ms_per_item, '.3f'):>8} "
            f"{fmt(r.transitions, 'd'):>11} {fmt(r.cost_usd, '.5f'):>10} {fmt(r.cost_per_million, '.2f'):>14}"
            f"  {r.note}"
        )
    return "\n".join(lines)


def smallest_capturing(points: dict[int, float]) -> int:
    """Smallest batch size whose figure (lower is better) captures CAPTURED of the saving batching offers."""
    worst, best = points[min(points)], min(points.values())
    return min(b for b, value in points.items() if worst - value >= CAPTURED * (worst - best))


def choose_default(rows: list[Row]) -> int | None:
    """The largest, over workloads and figures (run time per item, AWS cost per item), of the smallest
    batch size capturing CAPTURED of batching's saving. Only rows that succeeded count."""
    picks = []
    for workload in sorted({(r.workload, r.items) for r in rows}):
        done = [r for r in rows if (r.workload, r.items) == workload and r.status == "SUCCEEDED"]
        if len(done) < 2 or min(r.batch for r in done) != 1:
            continue
        picks.append(smallest_capturing({r.batch: r.run_s / r.items for r in done}))  # type: ignore[operator]
        picks.append(smallest_capturing({r.batch: float(r.cost_per_million) for r in done}))  # type: ignore[arg-type]
        print(f"{workload[0]} {workload[1]}: time -> {picks[-2]}, cost -> {picks[-1]}")
    return max(picks) if picks else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example-sizes", type=int, nargs="*", default=[1024])
    parser.add_argument("--trivial-items", type=int, default=10_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--run-oversized", action="store_true", help="run rows predicted to fail too")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()

    rows: list[Row] = []
    for size in args.example_sizes:
        for batch in args.batch_sizes:
            rows.append(run_example(size, batch, args.repeats, args.run_oversized))
    trivial: list[Row] = []
    if args.trivial_items:
        for batch in args.batch_sizes:
            trivial.append(run_trivial(args.trivial_items, batch, args.repeats))
    rows.extend(trivial)
    print(render(rows))
    if args.json:
        print(json.dumps([{**r.__dict__, "cost_usd": str(r.cost_usd)} for r in rows]))
    print(f"default batch_size: {choose_default(rows)}")


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
