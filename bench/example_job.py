"""The example job through the local engine at 1,024 / 4,096 / 16,384 items: wall time, peak RSS, totals.

Each size runs in a fresh process (so peak RSS is that size's, not the largest so far), through
`burstmap.client.run_local`, and its exact total is checked against an independent computation of
the seed formula. Then `burstmap run --size 1024` is timed from command to JSON, next to the state
machine run alone (targets: under 10 s and under 2 s on a 2-core machine).

    .venv/bin/python bench/example_job.py [--sizes 1024 4096 16384] [--app-dir .]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.set_int_max_str_digits(0)  # the totals run to tens of thousands of digits


def reference_total(size: int) -> int:
    """sum of a(i), i < size: a(i) = 128a(i-1) + 1863a(i-2) + 42451a(i-3) + 78341a(i-4), a(0) = 1."""
    window = [0, 0, 0, 0]  # a(i-4), a(i-3), a(i-2), a(i-1)
    total = 0
    for i in range(size):
        current = 1 if i == 0 else 128 * window[3] + 1863 * window[2] + 42451 * window[1] + 78341 * window[0]
        total += current
        window = [window[1], window[2], window[3], current]
    return total


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident set of this process and of its largest child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def run_one(size: int, app_dir: Path) -> dict[str, object]:
    """One size through run_local, in this process; returns its figures."""
    from burstmap.client import run_local

    started = time.perf_counter()
    result = run_local(size=size, app_dir=app_dir, stats=True)
    wall = time.perf_counter() - started
    own, children = peak_rss_mb()
    total = result.output.get("total_sum") if isinstance(result.output, dict) else None
    return {
        "size": size,
        "status": result.status,
        "error": result.error,
        "wall_s": wall,
        "run_s": (result.stats or {}).get("run_seconds"),
        "rss_parent_mb": own,
        "rss_child_mb": children,
        "exact": total == str(reference_total(size)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--app-dir", type=Path, default=PROJECT_DIR)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.app_dir)))
        return

    # Warm the assembly once so every row measures a run, not the first synth.
    from burstmap.client.local_app import prepare_app

    prepare_app(args.app_dir)
    rows = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--app-dir", str(args.app_dir)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    header = f"{'items':>7} {'status':>9} {'wall s':>7} {'run s':>7} {'RSS parent MB':>14}"
    header += f" {'RSS child MB':>13}"
    print(f"{header} exact")
    for row in rows:
        run_s = f"{row['run_s']:.2f}" if row["run_s"] is not None else "-"
        print(
            f"{row['size']:>7} {row['status']:>9} {row['wall_s']:>7.2f} {run_s:>7} "
            f"{row['rss_parent_mb']:>14.1f} {row['rss_child_mb']:>13.1f} {row['exact']}"
        )

    burstmap = Path(sys.executable).with_name("burstmap")
    started = time.perf_counter()
    out = subprocess.run(
        [str(burstmap), "run", "--size", "1024", "--stats", "--app-dir", str(args.app_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    command_seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"burstmap run --size 1024 failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    output = json.loads(out.stdout)
    exact = output.get("total_sum") == str(reference_total(1024))
    run_seconds = output.get("stats", {}).get("run_seconds")
    print(
        f"burstmap run --size 1024: command to JSON {command_seconds:.2f} s (target < 10), "
        f"state machine run {run_seconds} s (target < 2), exact total: {exact}"
    )


if __name__ == "__main__":
    main()
