"""Job options applied to the loaded definition: ``--batch-size`` and ``--max-concurrency`` for any app.

A local run changes the synthesized definition itself, not the app: ``max_concurrency`` becomes every
Distributed Map state's ``MaxConcurrency`` (its ``MaxConcurrencyPath`` dropped), ``batch_size`` its
``ItemBatcher.MaxItemsPerBatch`` (``MaxItemsPerBatchPath`` dropped). No re-synth, and it works the same
whatever the app reads from its context.

Batching changes what a compute receives (``{"Items": [...], "BatchInput": ...}`` instead of one item),
so a map without an ItemBatcher is batched only when it is BurstCompute's own compute Map: its shape
(runtime/contracts.py, shared with the construct's definition builder) is recognised exactly, and it is
rewritten to what BurstCompute renders for that batch size, its Combine task's ``batched`` flag included.
The way back (``batch_size=1`` on BurstCompute's batched Map) is the construct's unbatched shape too.
Anything else is refused with the state machine, the map state and the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from burstmap.client.job_input import JobInputError
from burstmap.runtime.contracts import (
    COMBINE_BATCHED_FIELD,
    DEFAULT_MAX_INPUT_BYTES_PER_BATCH,
    MAX_DISTRIBUTED_CONCURRENCY,
    compute_batch_input,
    compute_item_field,
    compute_item_selector,
)


class MapOverrideError(JobInputError):
    """An option that cannot apply to the app's Distributed Map; the message names the map and why."""


@dataclass(frozen=True)
class MapOverrides:
    """What a run changes in every Distributed Map state of the chosen state machine (None: unchanged)."""

    batch_size: int | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise MapOverrideError(f"batch_size must be 1 or more, got {self.batch_size!r}")
        concurrency = self.max_concurrency
        if concurrency is not None and (
            not _is_int(concurrency) or not 0 <= concurrency <= MAX_DISTRIBUTED_CONCURRENCY
        ):
            raise MapOverrideError(
                f"max_concurrency must be 0 (no limit) to {MAX_DISTRIBUTED_CONCURRENCY}, got {concurrency!r}"
            )

    def __bool__(self) -> bool:
        return self.batch_size is not None or self.max_concurrency is not None


def apply_map_overrides(
    definition: dict[str, Any], overrides: MapOverrides, *, state_machine: str
) -> dict[str, Any]:
    """A copy of ``definition`` with ``overrides`` applied to each Distributed Map state.

    ``state_machine`` names the machine in errors (its construct path). MapOverrideError when an option
    cannot apply: no Distributed Map at all, or a map that cannot take a batch size (module docstring).
    """
    if not overrides:
        return definition
    changed = copy.deepcopy(definition)
    maps = list(_distributed_maps(changed))
    if not maps:
        given = "batch_size" if overrides.batch_size is not None else "max_concurrency"
        raise MapOverrideError(
            f"{given} applies to Distributed Map states, and state machine {state_machine} has none"
        )
    rewritten: set[int] = set()
    for name, state, siblings in maps:
        if overrides.max_concurrency is not None:
            state.pop("MaxConcurrencyPath", None)
            state["MaxConcurrency"] = overrides.max_concurrency
        if overrides.batch_size is not None:
            _set_batch_size(state, overrides.batch_size, _Where(state_machine, name, siblings, rewritten))
    return changed


@dataclass(frozen=True)
class _Where:
    state_machine: str
    map_state: str
    siblings: dict[str, Any]
    """The States object the map is in (its Combine task is one of them)."""
    rewritten: set[int]
    """Combine payloads (by id) whose flag this call already changed: BurstCompute's maps share one."""

    def refuse(self, why: str) -> MapOverrideError:
        return MapOverrideError(
            f"batch_size (--batch-size) cannot apply to state machine {self.state_machine}, map state "
            f"{self.map_state!r}: {why}"
        )


def _set_batch_size(state: dict[str, Any], batch_size: int, where: _Where) -> None:
    batcher = state.get("ItemBatcher")
    item_field = compute_item_field(state.get("ItemSelector"))
    if batcher is not None:
        if not isinstance(batcher, dict):
            raise where.refuse("its ItemBatcher is not an object")
        combine = _combine_payload(state, where, batched=True)
        burst_compute = item_field is not None and batcher.get("BatchInput") == compute_batch_input()
        if batch_size == 1 and burst_compute and combine is not None:
            # BurstCompute's batched compute Map -> what it renders for batch_size=1: no ItemBatcher.
            combine[COMBINE_BATCHED_FIELD] = False
            del state["ItemBatcher"]
            state["ItemSelector"] = compute_item_selector(item_field, batched=False)
            return
        batcher.pop("MaxItemsPerBatchPath", None)
        batcher["MaxItemsPerBatch"] = batch_size
        return
    if batch_size == 1:
        return  # one item a child already
    if item_field is None or state.get("ItemSelector") != compute_item_selector(item_field, batched=False):
        raise where.refuse(
            "it has no ItemBatcher, so each child execution gets one item; batching it would change what "
            'its compute receives ({"Items": [...]} instead of one item). Give the map an ItemBatcher '
            "(BurstCompute batch_size > 1) to batch it"
        )
    combine = _combine_payload(state, where, batched=False)
    if combine is None:
        raise where.refuse(
            "its ItemSelector is BurstCompute's, but the state after it is not a Combine task whose payload "
            f'says "{COMBINE_BATCHED_FIELD}": false, so batches could not be told from single results'
        )
    writer_config = (state.get("ResultWriter") or {}).get("WriterConfig") or {}
    if writer_config.get("Transformation") == "FLATTEN":
        raise where.refuse("its ResultWriter FLATTENs results, which merges a batch's results with lists")
    combine[COMBINE_BATCHED_FIELD] = True
    state["ItemSelector"] = compute_item_selector(item_field, batched=True)
    state["ItemBatcher"] = {
        "MaxItemsPerBatch": batch_size,
        "MaxInputBytesPerBatch": DEFAULT_MAX_INPUT_BYTES_PER_BATCH,
        "BatchInput": compute_batch_input(),
    }


def _combine_payload(state: dict[str, Any], where: _Where, *, batched: bool) -> dict[str, Any] | None:
    """The payload of the BurstCompute Combine task that follows the map, when its ``batched`` flag is
    ``batched``; None when the map is followed by anything else."""
    following = where.siblings.get(state.get("Next")) if isinstance(state.get("Next"), str) else None
    parameters = following.get("Parameters") if isinstance(following, dict) else None
    payload = parameters.get("Payload") if isinstance(parameters, dict) else None
    if not isinstance(payload, dict):
        return None
    if payload.get(COMBINE_BATCHED_FIELD) is batched:
        where.rewritten.add(id(payload))
        return payload
    return payload if id(payload) in where.rewritten else None


def _distributed_maps(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States object holding it) for every Distributed Map, nested ones included."""
    states = definition.get("States")
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state.get("Type") == "Map" and isinstance(processor, dict):
            if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
                yield name, state, states
            yield from _distributed_maps(processor)
        for branch in state.get("Branches") or []:
            if isinstance(branch, dict):
                yield from _distributed_maps(branch)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
