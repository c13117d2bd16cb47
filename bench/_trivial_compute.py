"""The trivial compute both sides of bench/engine_overhead.py call: a batched Lambda handler.

A module of its own (not the benchmark script) so worker processes, the engine's and the pool's alike,
import it by name.
"""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> int:
    """Sum of the batch's items (integers): cheap enough that only the fan-out's cost is measured."""
    return sum(event["Items"])
