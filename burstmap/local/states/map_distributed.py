"""The Map state in DISTRIBUTED mode: each item (or batch) is a child workflow execution, run by
dmap/ (item reader, batcher, dispatch, result writer) under the state's Retry and Catch.

A JSONata distributed Map is run in the JSONPath shape dmap knows: its expressions (MaxConcurrency,
the tolerances, ItemReader/ItemBatcher/ResultWriter arguments) are evaluated first, and its
ItemSelector is applied per item by a callback.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.context import EventCounter
from burstmap.local.core.errors import (
    DefinitionError,
    InvalidDefinition,
    QueryEvaluationError,
    StatesError,
    unsupported,
)
from burstmap.local.core.history import map_state_started
from burstmap.local.core.json_text import to_json
from burstmap.local.dmap.child_ledger import ResumeAt
from burstmap.local.dmap.item_reader import GET_OBJECT, LIST_OBJECTS_V2, refuse_object_items
from burstmap.local.dmap.item_selector import SelectItem
from burstmap.local.dmap.map_run import run_distributed_map
from burstmap.local.dmap.settings import validate_distributed_map
from burstmap.local.query.jsonata import Env, resolve, state_env
from burstmap.local.query.jsonpath import read_path
from burstmap.local.query.variables import VariableScope
from burstmap.local.states.checks import StateCheck, check_fields, jsonpath_only
from burstmap.local.states.step import Step

DISTRIBUTED_ONLY = frozenset(
    {
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "ToleratedFailureCount",
        "ToleratedFailurePercentage",
        "Label",
    }
)
"""The fields only a distributed Map has (in JSONata, the `...Path` forms do not exist)."""
_JSONATA_READER_FIELDS = frozenset({"Resource", "Arguments", "ReaderConfig"})
_JSONATA_READER_CONFIG_FIELDS = frozenset(
    {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems"}
)
_JSONATA_BATCHER_FIELDS = frozenset({"MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"})
_JSONATA_WRITER_FIELDS = frozenset({"Resource", "Arguments", "WriterConfig"})


def validate(check: StateCheck, processor: dict[str, Any]) -> None:
    """The distributed Map's own fields (the common Map fields are map_inline's), then its processor."""
    name, state = check.name, check.state
    if not check.jsonata:
        check.machine(processor, f"the ItemProcessor of state '{name}'", processor=True)
        validate_distributed_map(name, state)
        return
    if "ItemReader" in state:
        _validate_jsonata_reader(check)
    if "ItemBatcher" in state:
        check_fields(state["ItemBatcher"], _JSONATA_BATCHER_FIELDS, "ItemBatcher.", name)
    if "ResultWriter" in state:
        check_fields(state["ResultWriter"], _JSONATA_WRITER_FIELDS, "ResultWriter.", name)
    check.machine(processor, f"the ItemProcessor of state '{name}'", processor=True)


def _validate_jsonata_reader(check: StateCheck) -> None:
    name, reader = check.name, check.state["ItemReader"]
    check_fields(reader, _JSONATA_READER_FIELDS, "ItemReader.", name)
    if "Parameters" in reader:
        raise jsonpath_only("ItemReader.Parameters", name)
    if reader.get("Resource") not in (GET_OBJECT, LIST_OBJECTS_V2):
        raise unsupported(f"ItemReader.Resource {reader.get('Resource')}", name)
    check_fields(
        reader.get("ReaderConfig", {}), _JSONATA_READER_CONFIG_FIELDS, "ItemReader.ReaderConfig.", name
    )
    if "Items" in check.state:
        raise DefinitionError(f"Map state '{name}': give Items or ItemReader, not both")


def run(step: Step, effective: Any) -> tuple[str | None, Any]:
    """The distributed Map under Retry and Catch; `effective` is its input after InputPath."""
    attempt = _jsonata_attempt if step.jsonata else _jsonpath_attempt
    return step.with_retry_and_catch(lambda attempt_context: attempt(step, effective, attempt_context))


def _run_map(
    step: Step,
    state: dict[str, Any],
    items_input: Any,
    context: dict[str, Any],
    select_item: SelectItem | None,
) -> Any:
    processor = step.state.get("ItemProcessor", step.state.get("Iterator"))
    machine = step.machine

    def run_child(child_input: Any, child_context: dict[str, Any], resume: ResumeAt | None = None) -> Any:
        """One child workflow execution: its own context object, event history and (empty) variables;
        a redriven one resumes where it failed."""
        if resume is None:
            return machine.run_machine(processor, child_input, child_context, EventCounter())
        scope = VariableScope()
        scope.restore(resume.variables)
        return machine.run_machine(
            processor, resume.input, child_context, EventCounter(), scope=scope, start_at=resume.state
        )

    events = step.events
    events.emit("MapStateStarted", lambda: map_state_started(_length(state, items_input, context)))
    try:
        result = run_distributed_map(
            step.name,
            state,
            items_input,
            context,
            step.services,
            run_child,
            select_item=select_item,
            events=events,
        )
    except StatesError:
        events.emit("MapStateFailed")
        raise
    events.emit("MapStateSucceeded")
    return result


def _length(state: dict[str, Any], items_input: Any, context: dict[str, Any]) -> int:
    """MapStateStarted's length: the items in the state's input (0 with an ItemReader, as AWS shows)."""
    if "ItemReader" in state:
        return 0
    try:
        items = read_path(state["ItemsPath"], items_input, context) if "ItemsPath" in state else items_input
    except StatesError:
        return 0
    return len(items) if isinstance(items, list) else 0


def _jsonpath_attempt(step: Step, effective: Any, context: dict[str, Any]) -> Any:
    return _run_map(step, step.state, effective, context, None)


def _jsonata_attempt(step: Step, data: Any, context: dict[str, Any]) -> Any:
    state = step.state
    env = state_env(data, context)
    shaped = _jsonpath_shape(state, env)
    try:
        validate_distributed_map(step.name, shaped)
    except InvalidDefinition as exc:
        raise QueryEvaluationError(str(exc)) from None
    items_input = data if "ItemReader" in state else jsonata_items(state, data, env, distributed=step.name)
    select_item = None
    if "ItemSelector" in state:

        def select_item(value: Any, item_context: dict[str, Any]) -> Any:
            return resolve(
                state["ItemSelector"], "ItemSelector", state_env(data, item_context, env.variables)
            )

    return _run_map(step, shaped, items_input, context, select_item)


def jsonata_items(state: dict[str, Any], data: Any, env: Env, *, distributed: str | None = None) -> list[Any]:
    """A JSONata Map's items: Items (a literal or an expression), else the state's input.
    `distributed` names a distributed Map state, whose items may not be an object."""
    items = resolve(state["Items"], "Items", env) if "Items" in state else data
    if distributed is not None:
        refuse_object_items(items, distributed)
    if not isinstance(items, list):
        raise QueryEvaluationError(f"Map state input must be an array but was: {to_json(items)}")
    return items


def _jsonpath_shape(state: dict[str, Any], env: Env) -> dict[str, Any]:
    """The distributed Map in JSONPath shape, every expression evaluated, for dmap to run.

    ItemReader/ResultWriter `Arguments` become literal `Parameters`; MaxItems, the batch limits and the
    tolerances become numbers; BatchInput becomes its value. (A literal key ending in ".$" inside
    those values would be read as a JSONPath field by dmap; AWS's JSONata fields have none.)
    """
    shaped: dict[str, Any] = {
        key: state[key] for key in ("Type", "Comment", "ItemProcessor", "Iterator", "Label") if key in state
    }
    for key in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
        if key in state:
            shaped[key] = resolve(state[key], key, env)
    if "ItemReader" in state:
        reader = state["ItemReader"]
        shaped["ItemReader"] = {
            "Resource": reader["Resource"],
            "Parameters": resolve(reader.get("Arguments", {}), "ItemReader/Arguments", env),
            "ReaderConfig": resolve(reader.get("ReaderConfig", {}), "ItemReader/ReaderConfig", env),
        }
    if "ItemBatcher" in state:
        shaped["ItemBatcher"] = resolve(state["ItemBatcher"], "ItemBatcher", env)
    if "ResultWriter" in state:
        writer = state["ResultWriter"]
        shaped["ResultWriter"] = {
            key: value for key, value in writer.items() if key in ("Resource", "WriterConfig")
        }
        if "Arguments" in writer:
            shaped["ResultWriter"]["Parameters"] = resolve(writer["Arguments"], "ResultWriter/Arguments", env)
    return shaped
