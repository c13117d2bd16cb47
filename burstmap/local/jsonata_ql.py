"""The JSONata query language: `{% ... %}` expressions, `$states`, and the JSONata form of each state.

A state uses JSONata when its `QueryLanguage` (or, when it has none, the state machine's top-level
`QueryLanguage`) is "JSONata". Its fields then differ from JSONPath's (AWS developer guide,
"Transforming data with JSONata in Step Functions"):

* InputPath, Parameters, ResultSelector, ResultPath, OutputPath (and every `...Path` field) are
  replaced by `Arguments` (Task, Parallel) and `Output`; Map has `Items` instead of `ItemsPath`,
  Choice rules a `Condition`, and Wait, Fail and the Map fields take expressions directly.
* A string is evaluated only when it is entirely `{% <expression> %}` (no space before `{%` or after
  `%}`), at any depth of an object or array; every other value is a literal (`"$.a"`, `"x.$"` keys
  and intrinsic-looking strings included).
* Expressions see `$states` = {input, context, result (Output and Assign after the work),
  errorOutput (in a Catch clause)} and the workflow variables as `$name`. `$eval` is not available
  (use `$parse`); Step Functions adds `$partition`, `$range`, `$hash`, `$random` (optional seed),
  `$uuid` and `$parse`.
* An expression that returns nothing fails the state with `States.QueryEvaluationError`: "The
  JSONata expression '<expr>' specified for the field '<field>' returned nothing (undefined).",
  where the field is named from the state with `/` before a key and `[i]` for an index
  (`Output/error`, `Choices[0]/Condition`, `Catch[1]/Output/v`), as AWS words it.
* Output defaults to `$states.result` (Task, Parallel, Map), `$states.input` (Pass, Wait, Choice,
  Succeed) or `$states.errorOutput` (a Catch clause).

Expressions are evaluated with jsonata-python (imported lazily: JSONPath-only runs never load it),
one parsed instance per thread and expression, because the library keeps per-thread state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from burstmap.local.core.context import EventCounter
from burstmap.local.core.errors import (
    NO_CHOICE_MATCHED,
    DefinitionError,
    FailStateError,
    QueryEvaluationError,
    StatesError,
    unsupported,
)
from burstmap.local.core.json_text import to_json
from burstmap.local.flow.retry_catch import parse_catchers, parse_retriers
from burstmap.local.query.jsonata import (
    Env,
    check_syntax,
    expression_text,
    expressions,
    integer_value,
    is_expression,
    resolve,
    state_env,
)
from burstmap.local.query.variables import current_scope, validate_assign


def finish(holder: dict[str, Any], env: Env, default_output: Any, prefix: str = "") -> Any:
    """Output and Assign of a state, a Choice rule or a Catch clause: both read the variables as the
    state was entered; the new values are stored last."""
    output = resolve(holder["Output"], f"{prefix}Output", env) if "Output" in holder else default_output
    values = resolve(holder["Assign"], f"{prefix}Assign", env) if "Assign" in holder else None
    if values:
        current_scope().assign(values)
    return output


# ------------------------------------------------------------------------------------- validation

_COMMON = frozenset({"Type", "Comment", "QueryLanguage"})
_FLOW = frozenset({"Next", "End"})
_DISTRIBUTED_ONLY = frozenset(
    {
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "ToleratedFailureCount",
        "ToleratedFailurePercentage",
        "Label",
    }
)
STATE_FIELDS: dict[str, frozenset[str]] = {
    "Pass": _COMMON | _FLOW | {"Output", "Assign"},
    "Task": _COMMON
    | _FLOW
    | {"Resource", "Arguments", "Output", "Assign", "Retry", "Catch", "TimeoutSeconds"},
    "Choice": _COMMON | {"Choices", "Default", "Output", "Assign"},
    "Wait": _COMMON | _FLOW | {"Seconds", "Timestamp", "Output", "Assign"},
    "Succeed": _COMMON | {"Output"},
    "Fail": _COMMON | {"Error", "Cause"},
    "Parallel": _COMMON | _FLOW | {"Branches", "Arguments", "Output", "Assign", "Retry", "Catch"},
    "Map": _COMMON
    | _FLOW
    | _DISTRIBUTED_ONLY
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
JSONPATH_ONLY_FIELDS = frozenset(
    {
        "InputPath",
        "OutputPath",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Result",
        "ItemsPath",
        "MaxConcurrencyPath",
        "SecondsPath",
        "TimestampPath",
        "ErrorPath",
        "CausePath",
        "TimeoutSecondsPath",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
    }
)
_CATCH_FIELDS = frozenset({"ErrorEquals", "Next", "Output", "Assign", "Comment"})
_RULE_FIELDS = frozenset({"Condition", "Next", "Output", "Assign", "Comment"})
_READER_FIELDS = frozenset({"Resource", "Arguments", "ReaderConfig"})
_READER_CONFIG_FIELDS = frozenset(
    {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems"}
)
_BATCHER_FIELDS = frozenset({"MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"})
_WRITER_FIELDS = frozenset({"Resource", "Arguments", "WriterConfig"})


def _jsonpath_only(field: str, state_name: str) -> DefinitionError:
    return DefinitionError(
        f"The QueryLanguage is set to 'JSONata', but field '{field}' is only supported for the 'JSONPath' "
        f"QueryLanguage (state '{state_name}')"
    )


def _check_fields(block: Any, allowed: frozenset[str], prefix: str, state_name: str) -> None:
    if not isinstance(block, dict):
        raise DefinitionError(f"{prefix.rstrip('.')} in state '{state_name}' must be an object")
    for key in block:
        if key not in allowed:
            raise unsupported(f"{prefix}{key}", state_name)


def validate_state(
    name: str,
    state: dict[str, Any],
    states: dict[str, Any],
    validate_machine: Callable[..., None],
) -> None:
    """Check a JSONata state at load time: its fields, transitions, handlers and expression syntax.

    `validate_machine(machine, where, processor=...)` checks a branch or an item processor.
    Raises UnsupportedFeature for what the engine does not run, DefinitionError for what AWS rejects.
    """
    kind = state["Type"]
    for key in state:
        if key in STATE_FIELDS[kind]:
            continue
        if key in JSONPATH_ONLY_FIELDS:
            raise _jsonpath_only(key, name)
        raise unsupported(key, name)
    if kind not in ("Choice", "Succeed", "Fail"):
        if ("Next" in state) == bool(state.get("End")):
            raise DefinitionError(f"state '{name}' needs exactly one of Next or \"End\": true")
        if state.get("Next") is not None and state["Next"] not in states:
            raise DefinitionError(
                f"Next {state['Next']!r} of state '{name}' names no state at the same level"
            )
    for index, spec in enumerate(state.get("Catch") or []):
        if isinstance(spec, dict):
            for key in spec:
                if key == "ResultPath":
                    raise _jsonpath_only("Catch.ResultPath", name)
                if key not in _CATCH_FIELDS:
                    raise unsupported(f"Catch.{key}", name)
            if "Assign" in spec:
                validate_assign(spec["Assign"], f"Catch[{index}]/Assign", name, jsonpath=False)
    for catcher in parse_catchers(state.get("Catch"), name):
        if catcher.next not in states:
            raise DefinitionError(
                f"Catch.Next {catcher.next!r} of state '{name}' names no state at the same level"
            )
    parse_retriers(state.get("Retry"), name)
    if "Assign" in state:
        validate_assign(state["Assign"], "Assign", name, jsonpath=False)
    checked = {
        key: value for key, value in state.items() if key not in ("ItemProcessor", "Iterator", "Branches")
    }
    for field, value in expressions(checked, "")[:]:
        check_syntax(value, field.lstrip("/"), name)
    _VALIDATORS.get(kind, lambda *args: None)(name, state, states, validate_machine)


def _validate_task(
    name: str, state: dict[str, Any], states: dict[str, Any], validate_machine: Callable
) -> None:
    from burstmap.local.states import _LAMBDA_ARN, _LAMBDA_INVOKE_PARAMETERS, LAMBDA_INVOKE

    resource = state.get("Resource")
    if resource == LAMBDA_INVOKE:
        arguments = state.get("Arguments")
        if isinstance(arguments, dict):
            for key in sorted(set(arguments) - _LAMBDA_INVOKE_PARAMETERS):
                raise unsupported(f"Arguments.{key}", name)
            if "FunctionName" not in arguments:
                raise DefinitionError(f"state '{name}': {LAMBDA_INVOKE} needs Arguments.FunctionName")
        elif not is_expression(arguments):
            raise DefinitionError(f"state '{name}': {LAMBDA_INVOKE} needs Arguments with FunctionName")
    elif not (isinstance(resource, str) and _LAMBDA_ARN.match(resource)):
        raise unsupported(f"Resource {resource}", name)
    timeout = state.get("TimeoutSeconds")
    if (
        timeout is not None
        and not is_expression(timeout)
        and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1)
    ):
        raise DefinitionError(f"state '{name}': TimeoutSeconds must be a positive integer, got {timeout!r}")


def _validate_choice(
    name: str, state: dict[str, Any], states: dict[str, Any], validate_machine: Callable
) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise DefinitionError(f"Choice state '{name}' needs Choices, a non-empty list of rules")
    for index, rule in enumerate(choices):
        if not isinstance(rule, dict) or rule.get("Next") not in states:
            raise DefinitionError(
                f"rule {index} of Choice state '{name}' needs Next, a state at the same level"
            )
        for key in rule:
            if key not in _RULE_FIELDS:
                raise (
                    _jsonpath_only(f"Choices.{key}", name)
                    if key in ("Variable", "And", "Or", "Not") or key.endswith(("Equals", "Path", "Than"))
                    else unsupported(f"Choices.{key}", name)
                )
        condition = rule.get("Condition")
        if not (is_expression(condition) or isinstance(condition, bool)):
            raise DefinitionError(
                f"rule {index} of Choice state '{name}' needs Condition, "
                "a '{% ... %}' expression or a boolean"
            )
        if "Assign" in rule:
            validate_assign(rule["Assign"], f"Choices[{index}]/Assign", name, jsonpath=False)
    if "Default" in state and state["Default"] not in states:
        raise DefinitionError(
            f"Default {state['Default']!r} of state '{name}' names no state at the same level"
        )


def _validate_wait(
    name: str, state: dict[str, Any], states: dict[str, Any], validate_machine: Callable
) -> None:
    from burstmap.local.states import _parse_timestamp

    given = [key for key in ("Seconds", "Timestamp") if key in state]
    if len(given) != 1:
        raise DefinitionError(f"Wait state '{name}' needs exactly one of Seconds or Timestamp")
    seconds = state.get("Seconds")
    if (
        "Seconds" in state
        and not is_expression(seconds)
        and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0)
    ):
        raise DefinitionError(f"Wait state '{name}': Seconds must be a non-negative integer, got {seconds!r}")
    timestamp = state.get("Timestamp")
    if "Timestamp" in state and not is_expression(timestamp) and _parse_timestamp(timestamp) is None:
        raise DefinitionError(f"Wait state '{name}': Timestamp must be an ISO-8601 date-time with an offset")


def _validate_parallel(
    name: str, state: dict[str, Any], states: dict[str, Any], validate_machine: Callable
) -> None:
    branches = state.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"Parallel state '{name}' needs Branches, a non-empty list")
    for index, branch in enumerate(branches):
        validate_machine(branch, f"branch {index} of state '{name}'")


def _validate_map(
    name: str, state: dict[str, Any], states: dict[str, Any], validate_machine: Callable
) -> None:
    from burstmap.local.dmap import item_reader
    from burstmap.local.dmap.settings import is_distributed

    if ("ItemProcessor" in state) == ("Iterator" in state):
        raise DefinitionError(f"Map state '{name}' needs exactly one of ItemProcessor or Iterator")
    processor = state.get("ItemProcessor", state.get("Iterator")) or {}
    config = processor.get("ProcessorConfig") or {}
    items = state.get("Items")
    if "Items" in state and not (isinstance(items, list) or is_expression(items)):
        raise DefinitionError(f"Map state '{name}': Items must be an array or a '{{% ... %}}' expression")
    limit = state.get("MaxConcurrency", 0)
    if not is_expression(limit) and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DefinitionError(
            f"Map state '{name}': MaxConcurrency must be a non-negative integer, got {limit!r}"
        )
    if not is_distributed(state):
        for key in config:
            if key != "Mode":
                raise unsupported(f"ProcessorConfig.{key}", name)
        if config.get("Mode", "INLINE") != "INLINE":
            raise DefinitionError(f"Map state '{name}': ProcessorConfig.Mode must be INLINE or DISTRIBUTED")
        for key in _DISTRIBUTED_ONLY & set(state):
            raise DefinitionError(f"Map state '{name}': {key} needs ProcessorConfig.Mode DISTRIBUTED")
    else:
        if "ItemReader" in state:
            reader = state["ItemReader"]
            _check_fields(reader, _READER_FIELDS, "ItemReader.", name)
            if "Parameters" in reader:
                raise _jsonpath_only("ItemReader.Parameters", name)
            if reader.get("Resource") not in (item_reader.GET_OBJECT, item_reader.LIST_OBJECTS_V2):
                raise unsupported(f"ItemReader.Resource {reader.get('Resource')}", name)
            _check_fields(
                reader.get("ReaderConfig", {}), _READER_CONFIG_FIELDS, "ItemReader.ReaderConfig.", name
            )
            if "Items" in state:
                raise DefinitionError(f"Map state '{name}': give Items or ItemReader, not both")
        if "ItemBatcher" in state:
            _check_fields(state["ItemBatcher"], _BATCHER_FIELDS, "ItemBatcher.", name)
        if "ResultWriter" in state:
            _check_fields(state["ResultWriter"], _WRITER_FIELDS, "ResultWriter.", name)
    validate_machine(processor, f"the ItemProcessor of state '{name}'", processor=True)


_VALIDATORS: dict[str, Callable[..., None]] = {
    "Task": _validate_task,
    "Choice": _validate_choice,
    "Wait": _validate_wait,
    "Parallel": _validate_parallel,
    "Map": _validate_map,
}


# ---------------------------------------------------------------------------------------- running
# Each runner returns (next state name or None, output), like the Interpreter's JSONPath runners.


def run_state(
    interpreter: Any,
    name: str,
    state: dict[str, Any],
    data: Any,
    context: dict[str, Any],
    events: EventCounter,
):
    """Run one JSONata state with the interpreter's services, Retry/Catch and sub-machine runner."""
    return _RUNNERS[state["Type"]](interpreter, name, state, data, context, events)


def _next(state: dict[str, Any]) -> str | None:
    return None if state.get("End") else state.get("Next")


def _run_pass(interpreter, name, state, data, context, events):
    return _next(state), finish(state, state_env(data, context), data)


def _run_succeed(interpreter, name, state, data, context, events):
    return None, finish(state, state_env(data, context), data)


def _run_fail(interpreter, name, state, data, context, events):
    from burstmap.local.states import _value_text

    env = state_env(data, context)
    error = _value_text(resolve(state["Error"], "Error", env)) if "Error" in state else None
    cause = _value_text(resolve(state["Cause"], "Cause", env)) if "Cause" in state else None
    raise FailStateError(error, cause)


def _run_choice(interpreter, name, state, data, context, events):
    env = state_env(data, context)
    for index, rule in enumerate(state["Choices"]):
        field = f"Choices[{index}]/Condition"
        matched = resolve(rule["Condition"], field, env)
        if not isinstance(matched, bool):
            raise QueryEvaluationError(
                f"The JSONata expression '{expression_text(rule['Condition'])}' specified for the field "
                f"'{field}' returned a non-boolean value: {json.dumps(matched)}"
            )
        if matched:
            return rule["Next"], finish(rule, env, data, prefix=f"Choices[{index}]/")
    if "Default" not in state:
        raise StatesError(
            NO_CHOICE_MATCHED, f"No Choice Rule matched the input in state '{name}' and it has no Default"
        )
    return state["Default"], finish(state, env, data)


def _run_wait(interpreter, name, state, data, context, events):
    from burstmap.local.states import _parse_timestamp, _value_text

    env = state_env(data, context)
    if "Seconds" in state:
        seconds: float = integer_value(state["Seconds"], "Seconds", env, minimum=0)
    else:
        value = resolve(state["Timestamp"], "Timestamp", env)
        moment = _parse_timestamp(value)
        if moment is None:
            raise QueryEvaluationError(
                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
                f"string: {_value_text(value)}"
            )
        seconds = max(0.0, (moment - interpreter.services.clock.now()).total_seconds())
    interpreter.services.clock.sleep(seconds)
    return _next(state), finish(state, env, data)


def _handlers(state: dict[str, Any], data: Any) -> dict[str, Callable[..., Any]]:
    """Success and Catch continuations for Interpreter._with_retry_and_catch, in JSONata terms."""

    def succeed(result: Any, context: dict[str, Any]) -> tuple[str | None, Any]:
        return _next(state), finish(state, state_env(data, context, result=result), result)

    def caught(catcher: Any, index: int, spec: dict[str, Any], error: StatesError, context: dict[str, Any]):
        error_output = error.as_output()
        env = state_env(data, context, errorOutput=error_output)
        return catcher.next, finish(spec, env, error_output, prefix=f"Catch[{index}]/")

    return {"succeed": succeed, "caught": caught}


def _run_task(interpreter, name, state, data, context, events):
    def attempt(attempt_context: dict[str, Any]) -> Any:
        env = state_env(data, attempt_context)
        arguments = resolve(state["Arguments"], "Arguments", env) if "Arguments" in state else data
        resolved = {key: value for key, value in state.items() if key != "TimeoutSeconds"}
        if "TimeoutSeconds" in state:
            resolved["TimeoutSeconds"] = integer_value(
                state["TimeoutSeconds"], "TimeoutSeconds", env, minimum=1
            )
        return interpreter._invoke_lambda(resolved, arguments, data, attempt_context, events)

    return interpreter._with_retry_and_catch(name, state, data, context, attempt, **_handlers(state, data))


def _run_parallel(interpreter, name, state, data, context, events):
    base = interpreter._execution_context(context)
    outer = current_scope()

    def attempt(attempt_context: dict[str, Any]) -> Any:
        env = state_env(data, attempt_context)
        branch_input = resolve(state["Arguments"], "Arguments", env) if "Arguments" in state else data
        events.next()  # ParallelStateStarted
        jobs = [
            functools.partial(
                interpreter.run_machine, branch, branch_input, base, events, scope=outer.child()
            )
            for branch in state["Branches"]
        ]
        return interpreter._run_all(jobs, len(jobs))

    return interpreter._with_retry_and_catch(name, state, data, context, attempt, **_handlers(state, data))


def _map_items(state: dict[str, Any], data: Any, env: Env) -> list[Any]:
    items = resolve(state["Items"], "Items", env) if "Items" in state else data
    if not isinstance(items, list):
        raise QueryEvaluationError(f"Map state input must be an array but was: {to_json(items)}")
    return items


def _run_map(interpreter, name, state, data, context, events):
    from burstmap.local.dmap.settings import is_distributed
    from burstmap.local.states import INLINE_MAP_MAX_CONCURRENCY

    processor = state.get("ItemProcessor", state.get("Iterator"))
    handlers = _handlers(state, data)
    if is_distributed(state):
        return interpreter._with_retry_and_catch(
            name,
            state,
            data,
            context,
            lambda attempt_context: _run_distributed(
                interpreter, name, state, processor, data, attempt_context
            ),
            **handlers,
        )
    base = interpreter._execution_context(context)
    outer = current_scope()

    def attempt(attempt_context: dict[str, Any]) -> Any:
        env = state_env(data, attempt_context)
        items = _map_items(state, data, env)
        limit = integer_value(state.get("MaxConcurrency", 0), "MaxConcurrency", env, minimum=0)
        concurrency = min(limit or INLINE_MAP_MAX_CONCURRENCY, INLINE_MAP_MAX_CONCURRENCY)
        events.next()  # MapStateStarted

        def iteration(index: int, value: Any) -> Any:
            if "ItemSelector" in state:
                item_context = {**attempt_context, "Map": {"Item": {"Index": index, "Value": value}}}
                value = resolve(
                    state["ItemSelector"], "ItemSelector", state_env(data, item_context, env.variables)
                )
            events.next()  # MapIterationStarted
            output = interpreter.run_machine(processor, value, base, events, scope=outer.child())
            events.next()  # MapIterationSucceeded
            return output

        jobs = [functools.partial(iteration, index, value) for index, value in enumerate(items)]
        results = interpreter._run_all(jobs, concurrency)
        events.next()  # MapStateSucceeded
        return results

    return interpreter._with_retry_and_catch(name, state, data, context, attempt, **handlers)


def _distributed_state(state: dict[str, Any], env: Env) -> dict[str, Any]:
    """The distributed Map in JSONPath shape, every expression evaluated, for map_run to run.

    ItemReader/ResultWriter `Arguments` become literal `Parameters`; MaxItems, the batch limits and the
    tolerances become numbers; BatchInput becomes its value. (A literal key ending in ".$" inside
    those values would be read as a JSONPath field by map_run; AWS's JSONata fields have none.)
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


def _run_distributed(interpreter, name, state, processor, data, context):
    from burstmap.local.core.errors import InvalidDefinition
    from burstmap.local.dmap.settings import validate_distributed_map

    env = state_env(data, context)
    shaped = _distributed_state(state, env)
    try:
        validate_distributed_map(name, shaped)
    except InvalidDefinition as exc:
        raise QueryEvaluationError(str(exc)) from None
    effective = data if "ItemReader" in state else _map_items(state, data, env)
    select_item = None
    if "ItemSelector" in state:

        def select_item(value: Any, item_context: dict[str, Any]) -> Any:
            return resolve(
                state["ItemSelector"], "ItemSelector", state_env(data, item_context, env.variables)
            )

    return interpreter._distributed(name, shaped, processor, effective, context, select_item=select_item)


_RUNNERS: dict[str, Callable[..., tuple[str | None, Any]]] = {
    "Pass": _run_pass,
    "Succeed": _run_succeed,
    "Fail": _run_fail,
    "Choice": _run_choice,
    "Wait": _run_wait,
    "Task": _run_task,
    "Parallel": _run_parallel,
    "Map": _run_map,
}
