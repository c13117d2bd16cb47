"""Turn ``def compute(item, parameters) -> result`` into a Lambda handler that also takes batches.

A Distributed Map child receives one of two events (docs/architecture.md):

* one item: ``{"item": <value>, "index": i, "parameters": {...}}`` -> the handler returns the result;
* a batch (ItemBatcher): ``{"Items": [{"item": ..., "index": i}, ...], "BatchInput": {"parameters": {...}}}``
  -> the handler returns a list of results aligned with ``Items``.

Usage::

    from burstmap.runtime.compute import compute_handler

    def compute(item, parameters):
        return item * item

    handler = compute_handler(compute)

A workload that computes consecutive items faster together passes ``batch_fn(items, parameters) -> list``
as well (or uses :func:`batch_compute_handler`). Integer results of 2**53 or more are returned as decimal
strings, so they survive JSON exactly. Standard library only: this module runs inside Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from burstmap.runtime.contracts import (
    ENV_SUMMED_RESULTS,
    InvalidComputeEvent,
    InvalidComputeResult,
    mark_failed_item,
    short_json,
    summable,
    to_wire,
)

ComputeFn = Callable[[Any, dict[str, Any]], Any]
BatchComputeFn = Callable[[list[Any], dict[str, Any]], Sequence[Any]]
LambdaHandler = Callable[[Any, Any], Any]

EXPECTED_SHAPES = (
    '{"item": <value>, "index": <int>, "parameters": {...}} (one item) or '
    '{"Items": [{"item": <value>, "index": <int>}, ...], "BatchInput": {"parameters": {...}}} (a batch)'
)


def compute_handler(fn: ComputeFn, *, batch_fn: BatchComputeFn | None = None) -> LambdaHandler:
    """A Lambda ``handler(event, context)`` for both event shapes.

    ``fn(item, parameters)`` computes one item. ``batch_fn(items, parameters)``, when given, computes a
    whole batch at once and must return one result per item, in order; without it a batch calls ``fn``
    once per item, and an item that raises is named in the error's message (``[item 7] ...``: the
    batch fails as a whole, and this is how the report names the item that failed in it).

    When the job's combiner is burstmap's exact sum (BurstCompute sets ``BURSTMAP_SUMMED_RESULTS`` on the
    compute function), a result the sum cannot add (a float, a list, ...) fails its item at once with
    InvalidComputeResult, instead of the combiner after every item ran.
    """

    def handler(event: Any, context: Any = None) -> Any:  # noqa: ARG001 - Lambda's signature
        items, indexes, parameters, batched = _parse(event)
        summed = os.environ.get(ENV_SUMMED_RESULTS) == "1"
        if not batched:
            return _checked(fn(items[0], parameters), indexes[0], summed, batched=False)
        if batch_fn is None:
            results: Sequence[Any] = [
                _compute_one(fn, item, index, parameters) for item, index in zip(items, indexes, strict=True)
            ]
        else:
            results = batch_fn(items, parameters)
            _check_batch_results(results, len(items), batch_fn)
        return [
            _checked(result, index, summed, batched=True)
            for result, index in zip(results, indexes, strict=True)
        ]

    handler.compute = fn  # type: ignore[attr-defined]
    handler.compute_batch = batch_fn  # type: ignore[attr-defined]
    handler.__doc__ = f"Lambda handler computing items with {getattr(fn, '__qualname__', fn)!s}."
    return handler


def _compute_one(fn: ComputeFn, item: Any, index: int | None, parameters: dict[str, Any]) -> Any:
    try:
        return fn(item, parameters)
    except Exception as error:
        if index is not None:
            mark_failed_item(error, index)
        raise


def _checked(result: Any, index: int | None, summed: bool, *, batched: bool) -> Any:
    """The result as it travels (to_wire); InvalidComputeResult if the job sums and cannot add it."""
    wired = to_wire(result)
    if summed and not summable(wired):
        which = "an item" if index is None else f"item {index}"
        error = InvalidComputeResult(
            f"The result of {which} is {short_json(result)}, which burstmap's default combiner (an exact "
            "sum) cannot add: return an integer (or its decimal string), or give BurstCompute a combine "
            "function that takes this result (burstmap.compute.combine_handler)."
        )
        if index is not None and batched:
            mark_failed_item(error, index)
        raise error
    return wired


def batch_compute_handler(batch_fn: BatchComputeFn) -> LambdaHandler:
    """A handler from a batch function alone: a single item is computed as a batch of one."""

    def single(item: Any, parameters: dict[str, Any]) -> Any:
        results = batch_fn([item], parameters)
        _check_batch_results(results, 1, batch_fn)
        return results[0]

    return compute_handler(single, batch_fn=batch_fn)


def parse_compute_event(event: Any) -> tuple[list[Any], dict[str, Any], bool]:
    """``(items, parameters, batched)`` of a compute event; InvalidComputeEvent for any other shape."""
    items, _, parameters, batched = _parse(event)
    return items, parameters, batched


def _parse(event: Any) -> tuple[list[Any], list[int | None], dict[str, Any], bool]:
    """``(items, their indexes, parameters, batched)``; an index the event does not carry is None."""
    if not isinstance(event, Mapping):
        raise InvalidComputeEvent(
            f"A compute handler expects {EXPECTED_SHAPES}; got {type(event).__name__}. "
            "Check the Map state's ItemSelector and ItemBatcher."
        )
    if "Items" in event:
        raw_items = event["Items"]
        if not isinstance(raw_items, list):
            raise InvalidComputeEvent(
                f"A batch's Items must be a list; got {type(raw_items).__name__}. Expected {EXPECTED_SHAPES}."
            )
        batch_input = event.get("BatchInput") or {}
        if not isinstance(batch_input, Mapping):
            raise InvalidComputeEvent(
                f"A batch's BatchInput must be an object; got {type(batch_input).__name__}. "
                f"Expected {EXPECTED_SHAPES}."
            )
        items, indexes = [], []
        for position, entry in enumerate(raw_items):
            if not isinstance(entry, Mapping) or "item" not in entry:
                raise InvalidComputeEvent(
                    f'Items[{position}] must be an object with "item" (and "index"), as the ItemSelector '
                    f'{{"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}} makes it; '
                    f"got {str(entry)[:80]}. Expected {EXPECTED_SHAPES}."
                )
            items.append(entry["item"])
            indexes.append(_index(entry))
        return items, indexes, _parameters(batch_input.get("parameters")), True
    if "item" in event:
        return [event["item"]], [_index(event)], _parameters(event.get("parameters")), False
    raise InvalidComputeEvent(
        f"A compute handler expects {EXPECTED_SHAPES}; got an object with keys {sorted(map(str, event))}. "
        "Check the Map state's ItemSelector and ItemBatcher."
    )


def _index(entry: Mapping[str, Any]) -> int | None:
    index = entry.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _parameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidComputeEvent(
            f"parameters must be an object; got {type(value).__name__}. Expected {EXPECTED_SHAPES}."
        )
    return dict(value)


def _check_batch_results(results: Any, expected: int, batch_fn: Callable[..., Any]) -> None:
    name = getattr(batch_fn, "__qualname__", repr(batch_fn))
    if isinstance(results, str | bytes | Mapping) or not isinstance(results, Sequence):
        raise InvalidComputeResult(
            f"{name} must return a list with one result per item; it returned {type(results).__name__}."
        )
    if len(results) != expected:
        raise InvalidComputeResult(
            f"{name} returned {len(results)} results for a batch of {expected} items: return exactly one "
            "result per item, in the order of the items."
        )
