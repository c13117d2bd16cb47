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
import hashlib
import json
import math
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.context import EventCounter
from burstmap.local.core.errors import (
    NO_CHOICE_MATCHED,
    DefinitionError,
    FailStateError,
    StateRuntimeError,
    StatesError,
    parse_catchers,
    parse_retriers,
    unsupported,
)
from burstmap.local.query.jsonpath import to_json
from burstmap.local.query.variables import current_scope, validate_assign

JSONATA = "JSONata"
JSONPATH = "JSONPath"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"


class QueryEvaluationError(StateRuntimeError):
    """`States.QueryEvaluationError`, raised below the state runner, which prefixes the cause with the
    state name and its entered event id (as for States.Runtime). Retry and Catch can match it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.error = QUERY_EVALUATION_ERROR


# ------------------------------------------------------------------------------------ expressions


def is_expression(value: Any) -> bool:
    """True for a string that is entirely `{% ... %}`: the only strings JSONata states evaluate."""
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def expression_text(value: str) -> str:
    """The expression inside `{% ... %}`, as AWS quotes it in error causes (surrounding spaces off)."""
    return value[2:-2].strip()


class _FunctionError(ValueError):
    """A Step Functions JSONata function called with arguments it refuses."""


def _plain(value: Any) -> Any:
    """A JSONata value (sequences, its null) as plain JSON-like Python (lists, None)."""
    from jsonata.utils import Utils

    if value is Utils.NULL_VALUE:
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _integer(value: Any, function: str, argument: str) -> int:
    """A number argument rounded towards zero, as Step Functions' functions take them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _FunctionError(f"{function}: the argument '{argument}' must be a number, got {value!r}")
    return int(value)


def _partition(array: Any = None, size: Any = None) -> Any:
    """$partition(array, chunkSize): the array in chunks of chunkSize, the last one holding the rest."""
    array = _plain(array)
    if not isinstance(array, list):
        raise _FunctionError(f"$partition: the first argument must be an array, got {array!r}")
    chunk = _integer(size, "$partition", "chunkSize")
    if chunk < 0:
        raise _FunctionError(f"$partition: the chunk size must be positive, got {size!r}")
    if chunk == 0 or not array:
        return None  # undefined, as AWS answers
    return [array[start : start + chunk] for start in range(0, len(array), chunk)]


def _range(start: Any = None, end: Any = None, step: Any = None) -> Any:
    """$range(start, end, step): start, start+step, ... up to end inclusive; one value comes back bare."""
    if step is None:
        return None
    first, last = _integer(start, "$range", "start"), _integer(end, "$range", "end")
    stride = _integer(step, "$range", "step")
    if stride == 0 or (last - first) * stride < 0:
        return None
    values = list(range(first, last + (1 if stride > 0 else -1), stride))
    return values[0] if len(values) == 1 else values


_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}


def _hash(value: Any = None, algorithm: Any = None) -> Any:
    """$hash(string, algorithm): hex digest; MD5, SHA-1, SHA-256, SHA-384 or SHA-512 (case-sensitive)."""
    if algorithm is None:
        return None
    if not isinstance(value, str):
        raise _FunctionError(f"$hash: the first argument must be a string, got {_plain(value)!r}")
    if algorithm not in _HASHES:
        raise _FunctionError(f"$hash: the algorithm must be one of {', '.join(_HASHES)}, got {algorithm!r}")
    return _HASHES[algorithm](value.encode("utf-8")).hexdigest()


def _random(seed: Any = None) -> float:
    """$random([seed]): a number in [0, 1); the same seed gives the same number."""
    if seed is None:
        return random.random()
    return random.Random(_integer(seed, "$random", "seed")).random()


def _uuid() -> str:
    """$uuid(): a version 4 UUID."""
    return str(uuid.uuid4())


def _parse(text: Any = None) -> Any:
    """$parse(jsonString): the JSON value the string holds (Step Functions' replacement for $eval)."""
    if not isinstance(text, str):
        raise _FunctionError(f"$parse: the argument must be a string of JSON text, got {_plain(text)!r}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _FunctionError(f"$parse: the argument is not JSON text ({exc}): {text!r}") from None


def _no_eval(*_: Any) -> Any:
    raise _FunctionError("$eval is not available in Step Functions: use $parse to read JSON text")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
    "eval": _no_eval,
}

_PER_THREAD = threading.local()
_CACHE_LIMIT = 2048


def compile_expression(text: str) -> Any:
    """A parsed expression with Step Functions' functions, cached per thread (the library keeps
    per-thread evaluation state). Raises the library's JException on a syntax error."""
    cache: dict[str, Any] | None = getattr(_PER_THREAD, "cache", None)
    if cache is None:
        cache = _PER_THREAD.cache = {}
    instance = cache.get(text)
    if instance is None:
        from jsonata import Jsonata

        instance = Jsonata(text)
        instance.set_output_convert_nulls(False)  # keep JSON null apart from undefined
        for name, function in _FUNCTIONS.items():
            instance.register_lambda(name, function)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = instance
    return instance


def check_syntax(value: str, field: str, state_name: str) -> None:
    """Refuse at load time an expression that does not parse (AWS: INVALID_JSONATA_EXPRESSION)."""
    text = expression_text(value)
    try:
        compile_expression(text)
    except Exception as exc:  # the library raises JException, and sometimes plain Python errors
        raise DefinitionError(
            f"the JSONata expression '{text}' in field '{field}' of state '{state_name}' "
            f"does not parse: {exc}"
        ) from None


@dataclass
class Env:
    """What expressions of one state see: `$states` and the variables as the state was entered."""

    states: dict[str, Any]
    variables: dict[str, Any]

    def with_states(self, **extra: Any) -> Env:
        return Env({**self.states, **extra}, self.variables)


def state_env(
    data: Any, context: dict[str, Any], variables: dict[str, Any] | None = None, **extra: Any
) -> Env:
    """`$states` for a state whose raw input is `data` (plus result / errorOutput when given)."""
    states = {"input": data, "context": context, **extra}
    return Env(states, current_scope().visible() if variables is None else variables)


def _to_json(value: Any, text: str, field: str) -> Any:
    from jsonata.utils import Utils

    if value is Utils.NULL_VALUE or value is None:
        return None
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryEvaluationError(
                f"The JSONata expression '{text}' specified for the field '{field}' returned a number that "
                f"JSON cannot hold ({value})."
            )
        return value
    if isinstance(value, dict):
        return {key: _to_json(item, text, field) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item, text, field) for item in value]
    raise QueryEvaluationError(
        f"The JSONata expression '{text}' specified for the field '{field}' "
        "returned an unsupported result type."
    )


def evaluate(value: str, field: str, env: Env) -> Any:
    """The JSON value of one `{% ... %}` string; QueryEvaluationError when it fails or is undefined."""
    from jsonata import Jsonata
    from jsonata.utils import Utils

    text = expression_text(value)
    try:
        instance = compile_expression(text)
    except Exception as exc:
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' does not parse: {exc}"
        ) from None
    bindings: dict[str, Any] = {
        name: Utils.NULL_VALUE if item is None else item for name, item in env.variables.items()
    }
    bindings["states"] = env.states
    Jsonata.CURRENT.jsonata = instance  # the library's functions read the evaluating instance from here
    try:
        raw = instance.evaluate(None, bindings)
    except Exception as exc:  # JException, _FunctionError, and arithmetic errors the library lets through
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' failed to evaluate: {exc}"
        ) from None
    if raw is None:
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined)."
        )
    return _to_json(raw, text, field)


def resolve(template: Any, field: str, env: Env) -> Any:
    """A JSONata field's value: `{% %}` strings evaluated at every depth, everything else literal."""
    if isinstance(template, str):
        return evaluate(template, field, env) if is_expression(template) else template
    if isinstance(template, dict):
        return {key: resolve(value, f"{field}/{key}", env) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(value, f"{field}[{index}]", env) for index, value in enumerate(template)]
    return template


def _expressions(template: Any, field: str) -> list[tuple[str, str]]:
    """Every (field, `{% %}` string) inside a template, for load-time syntax checks."""
    if is_expression(template):
        return [(field, template)]
    if isinstance(template, dict):
        return [found for key, value in template.items() for found in _expressions(value, f"{field}/{key}")]
    if isinstance(template, list):
        return [
            found
            for index, value in enumerate(template)
            for found in _expressions(value, f"{field}[{index}]")
        ]
    return []


def finish(holder: dict[str, Any], env: Env, default_output: Any, prefix: str = "") -> Any:
    """Output and Assign of a state, a Choice rule or a Catch clause: both read the variables as the
    state was entered; the new values are stored last."""
    output = resolve(holder["Output"], f"{prefix}Output", env) if "Output" in holder else default_output
    values = resolve(holder["Assign"], f"{prefix}Assign", env) if "Assign" in holder else None
    if values:
        current_scope().assign(values)
    return output


def _integer_field(value: Any, field: str, env: Env, *, minimum: int) -> int:
    """An integer field given as a literal or an expression (MaxConcurrency, Seconds, TimeoutSeconds)."""
    number = resolve(value, field, env)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        bound = "a non-negative" if minimum == 0 else "a positive"
        raise QueryEvaluationError(f"The {field} field must be {bound} integer, got {json.dumps(number)}")
    return number


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


def catch_specs(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The Catch clauses without Output and Assign, which errors.parse_catchers does not know."""
    specs = state.get("Catch")
    if not isinstance(specs, list):
        return specs
    return [
        {key: value for key, value in spec.items() if key not in ("Output", "Assign")}
        if isinstance(spec, dict)
        else spec
        for spec in specs
    ]


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
    for catcher in parse_catchers(catch_specs(state), name):
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
    for field, value in _expressions(checked, "")[:]:
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
    from burstmap.local.states import is_distributed

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
        seconds: float = _integer_field(state["Seconds"], "Seconds", env, minimum=0)
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
            resolved["TimeoutSeconds"] = _integer_field(
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
    from burstmap.local.states import INLINE_MAP_MAX_CONCURRENCY, is_distributed

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
        limit = _integer_field(state.get("MaxConcurrency", 0), "MaxConcurrency", env, minimum=0)
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
    from burstmap.local import map_common
    from burstmap.local.dmap import map_run

    env = state_env(data, context)
    shaped = _distributed_state(state, env)
    try:
        map_run.validate_distributed_map(name, shaped)
    except map_common.InvalidDefinition as exc:
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
