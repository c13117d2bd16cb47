"""How much faster is the example compute than the article's brute-force loop, for one item?

Prints a table (item, reference seconds, handler seconds, ratio) and, last, ``i=<N>: <ratio>x``.
The issue's goal is a ratio of at least 1000 at i = 1000. The reference grows roughly as i^5: at
i = 1000 it runs for minutes, so pass a smaller ``--index`` for a quick look.

    .venv/bin/python bench/example_compute_speed.py              # i = 1000 (slow reference)
    .venv/bin/python bench/example_compute_speed.py --index 300  # about a second
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

from burstmap.lambdas.example_compute.handler import compute


def multinomial(*vals: int) -> int:
    result = 1
    for i in vals:
        result *= math.factorial(i)
    return math.factorial(sum(vals)) // result


def article_reference(i: int) -> int:
    """The article's compute loop (seed 002) for a job of size i + 1."""
    size = i + 1
    result = 0
    for j in range(0, size // 2 + 1):
        if 2 * j > i:
            break
        for k in range(0, size // 3 + 1):
            if 2 * j + 3 * k > i:
                break
            for l in range(0, size // 4 + 1):  # noqa: E741 - the article's name
                if 2 * j + 3 * k + 4 * l > i:
                    break
                rest = i - 2 * j - 3 * k - 4 * l
                result += multinomial(rest, j, k, l) * 128**rest * 1863**j * 42451**k * 78341**l
    return result


def best_time(fn: Callable[[], object], *, min_total: float = 0.2) -> float:
    """Best of repeated runs (at least one, until ``min_total`` seconds are spent)."""
    best = math.inf
    spent = 0.0
    while spent < min_total or best == math.inf:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, default=1000, help="the item i to compute (default 1000)")
    args = parser.parse_args()
    sys.set_int_max_str_digits(0)
    i = args.index
    start = time.perf_counter()
    expected = article_reference(i)
    reference_seconds = time.perf_counter() - start
    if int(compute(i, {})) != expected:
        raise SystemExit(f"the handler disagrees with the reference at i = {i}")
    handler_seconds = best_time(lambda: compute(i, {}))
    ratio = reference_seconds / handler_seconds
    print(f"{'item':>6}  {'reference s':>12}  {'handler s':>12}  {'ratio':>10}")
    print(f"{i:>6}  {reference_seconds:>12.4f}  {handler_seconds:>12.6f}  {ratio:>10.0f}")
    print(f"i={i}: {ratio:.0f}x")


if __name__ == "__main__":
    main()
