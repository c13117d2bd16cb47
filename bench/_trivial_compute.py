"""The trivial compute both sides of bench/engine_overhead.py call: a batched Lambda handler.

A module of its own (not the benchmark script) so worker processes, the engine's and the pool's alike,
import it by name.
"""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> int:
    """Sum of the batch's items (integers), after `work` multiply-adds per item (default none).

    With work 0 only the fan-out's cost is measured; `BatchInput.work` emulates a small per-item compute.
    """
    work = int((event.get("BatchInput") or {}).get("work", 0))
    total = 0
    for item in event["Items"]:
        value = item
        for _ in range(work):
            value = (value * 31 + 7) % 1_000_003
        total += item if work == 0 else value
    return total


def handler_selected(event: dict[str, Any], context: Any) -> int:
    """The same sum over items shaped by the construct's ItemSelector: {"item": value, "index": i}."""
    return handler({**event, "Items": [item["item"] for item in event["Items"]]}, context)
