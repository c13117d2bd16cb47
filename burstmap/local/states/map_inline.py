"""The Map state: runs its item processor once per item. Inline (here): iterations in this
execution, at most 40 at once, each reading the enclosing variables and assigning only its own.
Distributed (ProcessorConfig.Mode DISTRIBUTED): child executions, in map_distributed.py.

JSONPath takes the items from ItemsPath and shapes each with ItemSelector (or the legacy
Parameters); JSONata from Items (or the input) and an ItemSelector expression. Either sees the
item as `$$.Map.Item.Value` / `$states.context.Map.Item.Value`, its index as `...Index` and
`...Source` STATE_DATA.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from burstmap.local.core.errors import DefinitionError, StateRuntimeError, StatesError, unsupported
from burstmap.local.core.history import map_iteration, map_state_started
from burstmap.local.core.json_text import value_text
from burstmap.local.dmap.item_reader import STATE_DATA
from burstmap.local.dmap.settings import is_distributed
from burstmap.local.query.jsonata import JSONATA, JSONPATH, integer_value, is_expression, resolve, state_env
from burstmap.local.query.jsonpath import field_or_path, read_path
from burstmap.local.query.payload_template import resolve_template
from burstmap.local.query.variables import current_scope
from burstmap.local.states import map_distributed
from burstmap.local.states.checks import FLOW, JSONATA_COMMON, JSONPATH_BASE, JSONPATH_RESULT, StateCheck
from burstmap.local.states.parallel import run_all
from burstmap.local.states.step import Step

INLINE_MAP_MAX_CONCURRENCY = 40
"""An inline Map runs at most 40 iterations at once, whatever MaxConcurrency says (0 = that maximum)."""

FIELDS = {
    JSONPATH: JSONPATH_BASE
    | FLOW
    | JSONPATH_RESULT
    | {
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "Assign",
    },
    JSONATA: JSONATA_COMMON
    | FLOW
    | map_distributed.DISTRIBUTED_ONLY
    | {
        "ItemProcessor",
        "Iterator",
        "Items",
        "ItemSelector",
        "MaxConcurrency",
        "Output",
        "Assign",
        "Retry",
        "Catch",
    },
}
"""A JSONPath distributed Map's fields are checked by dmap.settings instead."""

SelectItem = Callable[[Any, dict[str, Any]], Any]
"""(item value, the item's context object) -> what the iteration gets."""


def validate(check: StateCheck) -> None:
    state, name = check.state, check.name
    if ("ItemProcessor" in state) == ("Iterator" in state):
        raise DefinitionError(f"Map state '{name}' needs exactly one of ItemProcessor or Iterator")
    processor = state.get("ItemProcessor", state.get("Iterator"))
    if check.jsonata:
        processor = processor or {}
        _validate_jsonata_items(check)
    if is_distributed(state):
        map_distributed.validate(check, processor)
        return
    _validate_inline(check, (processor or {}).get("ProcessorConfig") or {})
    check.machine(processor, f"the ItemProcessor of state '{name}'", processor=True)


def _validate_jsonata_items(check: StateCheck) -> None:
    state, name = check.state, check.name
    items = state.get("Items")
    if "Items" in state and not (isinstance(items, list) or is_expression(items)):
        raise DefinitionError(f"Map state '{name}': Items must be an array or a '{{% ... %}}' expression")
    limit = state.get("MaxConcurrency", 0)
    if not is_expression(limit) and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DefinitionError(
            f"Map state '{name}': MaxConcurrency must be a non-negative integer, got {limit!r}"
        )


def _validate_inline(check: StateCheck, config: dict[str, Any]) -> None:
    state, name = check.state, check.name
    for key in config:
        if key != "Mode":
            raise unsupported(f"ProcessorConfig.{key}", name)
    if config.get("Mode", "INLINE") != "INLINE":
        raise DefinitionError(f"Map state '{name}': ProcessorConfig.Mode must be INLINE or DISTRIBUTED")
    if check.jsonata:
        for key in map_distributed.DISTRIBUTED_ONLY & set(state):
            raise DefinitionError(f"Map state '{name}': {key} needs ProcessorConfig.Mode DISTRIBUTED")
        return
    if "ItemSelector" in state and "Parameters" in state:
        raise DefinitionError(f"Map state '{name}': give ItemSelector or Parameters, not both")
    if "MaxConcurrency" in state and "MaxConcurrencyPath" in state:
        raise DefinitionError(f"Map state '{name}': give MaxConcurrency or MaxConcurrencyPath, not both")
    limit = state.get("MaxConcurrency", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise DefinitionError(
            f"Map state '{name}': MaxConcurrency must be a non-negative integer, got {limit!r}"
        )


def run(step: Step) -> tuple[str | None, Any]:
    effective = step.io.effective_input(step.state, step.data, step.context)
    if is_distributed(step.state):
        return map_distributed.run(step, effective)
    plan = _jsonata_plan if step.jsonata else _jsonpath_plan

    def attempt(attempt_context: dict[str, Any]) -> Any:
        items, limit, select = plan(step, effective, attempt_context)
        concurrency = min(limit or INLINE_MAP_MAX_CONCURRENCY, INLINE_MAP_MAX_CONCURRENCY)
        return _iterate(step, items, concurrency, select, attempt_context)

    return step.with_retry_and_catch(attempt)


def _item_context(context: dict[str, Any], index: int, value: Any) -> dict[str, Any]:
    """The context object an iteration's ItemSelector sees: an inline Map's items always come from
    the state input, so `Map.Item.Source` is STATE_DATA."""
    return {**context, "Map": {"Item": {"Index": index, "Value": value, "Source": STATE_DATA}}}


def _jsonpath_plan(step: Step, effective: Any, context: dict[str, Any]) -> tuple[list[Any], int, SelectItem]:
    """The items (ItemsPath), MaxConcurrency(Path) and the ItemSelector (or Parameters)."""
    state = step.state
    items_path = state.get("ItemsPath", "$")
    items = read_path(items_path, effective, context)
    if not isinstance(items, list):
        raise StateRuntimeError(
            f"Invalid path '{items_path}': the value must be a JSON array, got '{value_text(items)}'"
        )
    limit = field_or_path(state, "MaxConcurrency", effective, context, default=0)
    if limit < 0:
        path = state["MaxConcurrencyPath"]
        raise StateRuntimeError(f"The MaxConcurrencyPath field refers to a negative value: {path} == {limit}")
    selector = state.get("ItemSelector", state.get("Parameters"))

    def select(value: Any, item_context: dict[str, Any]) -> Any:
        return value if selector is None else resolve_template(selector, effective, item_context)

    return items, limit, select


def _jsonata_plan(step: Step, data: Any, context: dict[str, Any]) -> tuple[list[Any], int, SelectItem]:
    """The items (Items, else the input), MaxConcurrency and the ItemSelector, as expressions."""
    state = step.state
    env = state_env(data, context)
    items = map_distributed.jsonata_items(state, data, env)
    limit = integer_value(state.get("MaxConcurrency", 0), "MaxConcurrency", env, minimum=0)

    def select(value: Any, item_context: dict[str, Any]) -> Any:
        if "ItemSelector" not in state:
            return value
        return resolve(state["ItemSelector"], "ItemSelector", state_env(data, item_context, env.variables))

    return items, limit, select


def _iterate(
    step: Step, items: list[Any], concurrency: int, select: SelectItem, context: dict[str, Any]
) -> list[Any]:
    """Run the item processor on every item, at most `concurrency` at once; outputs in item order."""
    processor = step.state.get("ItemProcessor", step.state.get("Iterator"))
    base, events, outer = step.execution_context(), step.events, current_scope()

    def iteration(index: int, value: Any) -> Any:
        value = select(value, _item_context(context, index, value))
        flow = events.branch()
        flow.emit(
            "MapIterationStarted", lambda: map_iteration("mapIterationStartedEventDetails", step.name, index)
        )
        try:
            output = step.machine.run_machine(processor, value, base, flow, scope=outer.child())
        except StatesError:
            flow.emit(
                "MapIterationFailed",
                lambda: map_iteration("mapIterationFailedEventDetails", step.name, index),
            )
            raise
        flow.emit(
            "MapIterationSucceeded",
            lambda: map_iteration("mapIterationSucceededEventDetails", step.name, index),
        )
        return output

    events.emit("MapStateStarted", lambda: map_state_started(len(items)))
    try:
        results = run_all(
            [partial(iteration, index, value) for index, value in enumerate(items)], concurrency
        )
    except StatesError:
        events.emit("MapStateFailed")
        raise
    events.emit("MapStateSucceeded")
    return results
