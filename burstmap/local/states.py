"""The states of the JSONPath query language, and the checks that refuse what the engine does not run.

Every state kind is one `_run_<Type>` method of `Interpreter`. The processing order is the
specification's: InputPath -> Parameters / ItemSelector -> the work -> ResultSelector -> ResultPath
-> OutputPath; Retry and Catch wrap "the work" (with Parameters and ResultSelector, which see
`$$.State.RetryCount`). A caught error skips ResultSelector, ResultPath and OutputPath: the
catcher's ResultPath places {"Error", "Cause"} in the state's raw input.

Sources: the Amazon States Language specification, the AWS developer guide ("Task", "Map",
"Parallel", "Wait", "Fail", "Invoke Lambda with Step Functions"), and the AWS-recorded
conformance cases (shared/conformance), whose exact cause texts are reproduced here.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

from burstmap.local.core.context import EventCounter, Services, iso_timestamp
from burstmap.local.core.errors import (
    DATA_LIMIT_EXCEEDED,
    NO_CHOICE_MATCHED,
    DefinitionError,
    FailStateError,
    StateRuntimeError,
    StatesError,
    runtime_cause,
    unsupported,
)
from burstmap.local.core.json_text import to_json
from burstmap.local.core.limits import LAMBDA_INVOKE
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES as PAYLOAD_LIMIT_BYTES
from burstmap.local.dmap.map_run import run_distributed_map
from burstmap.local.dmap.settings import is_distributed, validate_distributed_map
from burstmap.local.flow.lambda_invoke import LambdaRequest, require_runtime, run_task
from burstmap.local.flow.retry_catch import (
    ErrorHandlers,
    parse_catchers,
    parse_retriers,
    run_with_retry_and_catch,
)
from burstmap.local.query.jsonpath import (
    NOT_GIVEN,
    apply_input_path,
    apply_output_path,
    read_path,
    validate_reference_path,
    write_result,
)
from burstmap.local.query.payload_template import assigned_values as assign_jsonpath
from burstmap.local.query.payload_template import evaluate_expression, resolve_template
from burstmap.local.query.variables import (
    VariableScope,
    current_scope,
    using_scope,
    validate_assign,
)

"""A state's input or output, and a task's result, hold at most 256 KiB (States.DataLimitExceeded)."""
INLINE_MAP_MAX_CONCURRENCY = 40
"""An inline Map runs at most 40 iterations at once, whatever MaxConcurrency says (0 = that maximum)."""
_LAMBDA_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)

# ------------------------------------------------------------------------------------ validation

_IO = frozenset({"Type", "Comment", "InputPath", "OutputPath"})
_FLOW = frozenset({"Next", "End"})
_RESULT = frozenset({"ResultPath", "ResultSelector", "Retry", "Catch"})
STATE_FIELDS: dict[str, frozenset[str]] = {
    "Pass": _IO | _FLOW | {"Result", "ResultPath", "Parameters", "Assign"},
    "Task": _IO
    | _FLOW
    | _RESULT
    | {"Resource", "Parameters", "TimeoutSeconds", "TimeoutSecondsPath", "Assign"},
    "Choice": _IO | {"Choices", "Default", "Assign"},
    "Wait": _IO | _FLOW | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Assign"},
    "Succeed": _IO,
    "Fail": frozenset({"Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath"}),
    "Parallel": _IO | _FLOW | _RESULT | {"Branches", "Parameters", "Assign"},
    "Map": _IO
    | _FLOW
    | _RESULT
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
}
_JSONATA_ONLY_FIELDS = frozenset({"Arguments", "Output", "Items"})
QUERY_LANGUAGES = ("JSONPath", "JSONata")
_MACHINE_FIELDS = frozenset({"StartAt", "States", "Comment", "Version", "QueryLanguage"})
_PROCESSOR_FIELDS = frozenset({"StartAt", "States", "Comment", "ProcessorConfig"})
_LAMBDA_INVOKE_PARAMETERS = frozenset({"FunctionName", "Payload"})


def validate_definition(definition: Any) -> None:
    """Check a whole definition before anything runs: structure, transitions, and every field.

    Raises UnsupportedFeature for what the engine does not run (naming the field and the state) and
    DefinitionError for what AWS would reject.
    """
    _validate_machine(definition, "the state machine", top=True)


def _validate_machine(
    machine: Any, where: str, *, top: bool = False, processor: bool = False, language: str = "JSONPath"
) -> None:
    """`language` is the state machine's top-level QueryLanguage, which every state without its own
    QueryLanguage uses, inside branches and item processors too."""
    if not isinstance(machine, dict):
        raise DefinitionError(f"{where} must be an object with StartAt and States")
    allowed = _PROCESSOR_FIELDS if processor else _MACHINE_FIELDS
    for key in machine:
        if key not in allowed:
            if top and key == "TimeoutSeconds":
                timeout = machine[key]
                if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
                    raise DefinitionError(f"TimeoutSeconds must be a positive integer, got {timeout!r}")
                continue
            raise (
                unsupported(key, where)
                if key in ("Assign", "Variables", "Arguments", "Output")
                else DefinitionError(f"unknown field {key!r} in {where}")
            )
    if top:
        language = machine.get("QueryLanguage", "JSONPath")
        if language not in QUERY_LANGUAGES:
            raise DefinitionError(f"QueryLanguage of {where} must be JSONPath or JSONata, got {language!r}")
    states = machine.get("States")
    start = machine.get("StartAt")
    if not isinstance(states, dict) or not states:
        raise DefinitionError(f"{where} needs States, an object of named states")
    if start not in states:
        raise DefinitionError(f"StartAt {start!r} of {where} names no state in States")
    for name, state in states.items():
        _validate_state(name, state, states, language)


def _check_next(name: str, target: Any, states: dict[str, Any], field: str) -> None:
    if target not in states:
        raise DefinitionError(f"{field} {target!r} of state '{name}' names no state at the same level")


def _validate_state(name: str, state: Any, states: dict[str, Any], language: str = "JSONPath") -> None:
    if not isinstance(state, dict):
        raise DefinitionError(f"state '{name}' must be an object")
    kind = state.get("Type")
    if kind not in STATE_FIELDS:
        raise (
            unsupported(f"Type: {kind}", name)
            if isinstance(kind, str)
            else DefinitionError(f"state '{name}' needs a Type")
        )
    own_language = state.get("QueryLanguage", language)
    if own_language not in QUERY_LANGUAGES:
        raise DefinitionError(
            f"QueryLanguage of state '{name}' must be JSONPath or JSONata, got {own_language!r}"
        )
    if language == "JSONata" and own_language == "JSONPath":
        raise DefinitionError(
            f"state '{name}': 'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' "
            "for whole state machine"
        )
    if own_language == "JSONata":
        from burstmap.local import jsonata_ql

        nested = lambda machine, where, processor=False: _validate_machine(  # noqa: E731
            machine, where, processor=processor, language=language
        )
        jsonata_ql.validate_state(name, state, states, nested)
        return
    distributed = kind == "Map" and is_distributed(state)
    for key in state:
        if key == "QueryLanguage":
            continue
        if key in _JSONATA_ONLY_FIELDS:
            raise DefinitionError(
                f"The QueryLanguage is set to 'JSONPath', but field '{key}' is only supported for the "
                f"'JSONata' QueryLanguage (state '{name}')"
            )
        if key not in STATE_FIELDS[kind] and not distributed:
            raise unsupported(key, name)
        if distributed and key in ("Credentials", "HeartbeatSeconds"):
            raise unsupported(key, name)
    if kind not in ("Choice", "Succeed", "Fail"):
        if ("Next" in state) == bool(state.get("End")):
            raise DefinitionError(f"state '{name}' needs exactly one of Next or \"End\": true")
        if "Next" in state:
            _check_next(name, state["Next"], states, "Next")
    for field in ("ResultPath",):
        if field in state:
            validate_reference_path(state[field], field, name)
    for index, spec in enumerate(state.get("Catch") or []):
        if isinstance(spec, dict) and "Output" in spec:
            raise DefinitionError(
                f"The QueryLanguage is set to 'JSONPath', but field 'Catch.Output' is only supported for the "
                f"'JSONata' QueryLanguage (state '{name}')"
            )
        if isinstance(spec, dict) and "Assign" in spec:
            validate_assign(spec["Assign"], f"Catch[{index}].Assign", name, jsonpath=True)
    for catcher in parse_catchers(state.get("Catch"), name):
        _check_next(name, catcher.next, states, "Catch.Next")
        validate_reference_path(catcher.result_path, "Catch.ResultPath", name)
    parse_retriers(state.get("Retry"), name)
    if "Assign" in state:
        validate_assign(state["Assign"], "Assign", name, jsonpath=True)
    validator = _VALIDATORS.get(kind)
    if validator is not None:
        validator(name, state, states)


def _validate_task(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    resource = state.get("Resource")
    if resource == LAMBDA_INVOKE:
        parameters = state.get("Parameters")
        if not isinstance(parameters, dict):
            raise DefinitionError(f"state '{name}': {LAMBDA_INVOKE} needs Parameters with FunctionName")
        names = {key[:-2] if key.endswith(".$") else key for key in parameters}
        for key in sorted(names - _LAMBDA_INVOKE_PARAMETERS):
            raise unsupported(f"Parameters.{key}", name)
        if "FunctionName" not in names:
            raise DefinitionError(f"state '{name}': {LAMBDA_INVOKE} needs Parameters.FunctionName")
    elif not (isinstance(resource, str) and _LAMBDA_ARN.match(resource)):
        raise unsupported(f"Resource {resource}", name)
    if "TimeoutSeconds" in state and "TimeoutSecondsPath" in state:
        raise DefinitionError(f"state '{name}': give TimeoutSeconds or TimeoutSecondsPath, not both")
    timeout = state.get("TimeoutSeconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise DefinitionError(f"state '{name}': TimeoutSeconds must be a positive integer, got {timeout!r}")


def _validate_choice(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise DefinitionError(f"Choice state '{name}' needs Choices, a non-empty list of rules")
    from burstmap.local.query.choice_rules import validate_choice_rule

    for rule in choices:
        if not isinstance(rule, dict) or "Next" not in rule:
            raise DefinitionError(f"every rule of Choice state '{name}' needs Next")
        _check_next(name, rule["Next"], states, "Choices.Next")
        if "Assign" in rule:
            validate_assign(rule["Assign"], "Choices.Assign", name, jsonpath=True)
            rule = {key: value for key, value in rule.items() if key != "Assign"}
        validate_choice_rule(rule, name)
    if "Default" in state:
        _check_next(name, state["Default"], states, "Default")


def _validate_wait(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    given = [key for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if key in state]
    if len(given) != 1:
        raise DefinitionError(
            f"Wait state '{name}' needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"
        )
    seconds = state.get("Seconds")
    if "Seconds" in state and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0):
        raise DefinitionError(f"Wait state '{name}': Seconds must be a non-negative integer, got {seconds!r}")
    if "Timestamp" in state and _parse_timestamp(state["Timestamp"]) is None:
        raise DefinitionError(f"Wait state '{name}': Timestamp must be an ISO-8601 date-time with an offset")


def _validate_fail(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    for field in ("Error", "Cause"):
        if field in state and f"{field}Path" in state:
            raise DefinitionError(f"Fail state '{name}': give {field} or {field}Path, not both")


def _validate_parallel(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    branches = state.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"Parallel state '{name}' needs Branches, a non-empty list")
    for index, branch in enumerate(branches):
        _validate_machine(branch, f"branch {index} of state '{name}'")


def _validate_map(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    if ("ItemProcessor" in state) == ("Iterator" in state):
        raise DefinitionError(f"Map state '{name}' needs exactly one of ItemProcessor or Iterator")
    processor = state.get("ItemProcessor", state.get("Iterator"))
    config = (processor or {}).get("ProcessorConfig") or {}
    if is_distributed(state):
        _validate_machine(processor, f"the ItemProcessor of state '{name}'", processor=True)
        validate_distributed_map(name, state)
        return
    for key in config:
        if key != "Mode":
            raise unsupported(f"ProcessorConfig.{key}", name)
    if config.get("Mode", "INLINE") != "INLINE":
        raise DefinitionError(f"Map state '{name}': ProcessorConfig.Mode must be INLINE or DISTRIBUTED")
    if "ItemSelector" in state and "Parameters" in state:
        raise DefinitionError(f"Map state '{name}': give ItemSelector or Parameters, not both")
    if "MaxConcurrency" in state and "MaxConcurrencyPath" in state:
        raise DefinitionError(f"Map state '{name}': give MaxConcurrency or MaxConcurrencyPath, not both")
    limit = state.get("MaxConcurrency", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise DefinitionError(
            f"Map state '{name}': MaxConcurrency must be a non-negative integer, got {limit!r}"
        )
    _validate_machine(processor, f"the ItemProcessor of state '{name}'", processor=True)


_VALIDATORS: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], None]] = {
    "Task": _validate_task,
    "Choice": _validate_choice,
    "Wait": _validate_wait,
    "Fail": _validate_fail,
    "Parallel": _validate_parallel,
    "Map": _validate_map,
}


# ------------------------------------------------------------------------------------ running


def _value_text(value: Any) -> str:
    """How AWS quotes a resolved value in a runtime error: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


def _parse_timestamp(text: Any) -> datetime | None:
    """An ISO-8601 extended offset date-time (T, seconds and an offset required; up to nanoseconds)."""
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{(fraction or '0')[:6].ljust(6, '0')}"
            + ("+00:00" if offset == "Z" else offset)
        )
    except ValueError:
        return None
    return moment


def _next(state: dict[str, Any]) -> str | None:
    return None if state.get("End") else state.get("Next")


class Interpreter:
    """Runs (sub-)state machines of one execution; thread-safe, shared by branches and iterations."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._parsed: dict[int, ErrorHandlers] = {}
        self.query_language: str | None = None
        """The state machine's top-level QueryLanguage, set by the first (top-level) run_machine."""

    # -- the machine loop ---------------------------------------------------------------------

    def run_machine(
        self,
        machine: dict[str, Any],
        data: Any,
        context: dict[str, Any],
        events: EventCounter,
        *,
        scope: VariableScope | None = None,
    ) -> Any:
        """Run from StartAt to a terminal state; return the output or raise StatesError.

        `scope` holds the workflow variables its states read and assign: a child of the enclosing
        scope for a Parallel branch or an inline Map iteration, a new one (the default) for an
        execution or a distributed Map's child execution.
        """
        if self.query_language is None:
            self.query_language = machine.get("QueryLanguage", "JSONPath")
        states = machine["States"]
        name = machine["StartAt"]
        with using_scope(scope if scope is not None else VariableScope()):
            while True:
                name_next, data = self.run_state(name, states[name], data, context, events)
                if name_next is None:
                    return data
                name = name_next

    def run_state(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ) -> tuple[str | None, Any]:
        entered = events.next()
        self.services.stats.add("state_transitions")
        state_context = {key: value for key, value in context.items() if key != "Map"}
        state_context["State"] = {"EnteredTime": iso_timestamp(self.services.clock.now()), "Name": name}
        try:
            if state.get("QueryLanguage", self.query_language) == "JSONata":
                from burstmap.local import jsonata_ql

                next_name, output = jsonata_ql.run_state(self, name, state, data, state_context, events)
            else:
                next_name, output = getattr(self, f"_run_{state['Type']}")(
                    name, state, data, state_context, events
                )
        except StateRuntimeError as exc:  # States.Runtime, or States.QueryEvaluationError (JSONata)
            raise StatesError(exc.error, runtime_cause(name, entered, exc.detail)) from exc
        if state["Type"] not in ("Fail",):
            events.next()  # ...StateExited
        self._check_size(name, output)
        return next_name, output

    def _check_size(self, name: str, output: Any) -> None:
        if (
            isinstance(output, (dict, list, str))
            and len(to_json(output).encode("utf-8")) > PAYLOAD_LIMIT_BYTES
        ):
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{name}' returned a result with a size exceeding the maximum number of "
                "bytes service limit.",
            )

    # -- Retry and Catch ------------------------------------------------------------------------

    def _handlers(self, name: str, state: dict[str, Any]) -> ErrorHandlers:
        key = id(state)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = ErrorHandlers.parse(name, state)
        return parsed

    def _with_retry_and_catch(
        self,
        name: str,
        state: dict[str, Any],
        raw_input: Any,
        context: dict[str, Any],
        attempt: Callable[[dict[str, Any]], Any],
        *,
        succeed: Callable[[Any, dict[str, Any]], tuple[str | None, Any]] | None = None,
        caught: Callable[..., tuple[str | None, Any]] | None = None,
    ) -> tuple[str | None, Any]:
        def jsonpath_succeed(result: Any, attempt_context: dict[str, Any]) -> tuple[str | None, Any]:
            values = assign_jsonpath(state.get("Assign"), result, attempt_context)
            output = write_result(raw_input, result, state.get("ResultPath", "$"))
            output = apply_output_path(output, state.get("OutputPath", NOT_GIVEN), context)
            current_scope().assign(values)
            return _next(state), output

        def jsonpath_caught(index, catcher, exc, attempt_context):
            clause = state["Catch"][index]
            values = assign_jsonpath(clause.get("Assign"), exc.as_output(), attempt_context)
            output = write_result(raw_input, exc.as_output(), catcher.result_path)
            current_scope().assign(values)
            return catcher.next, output

        def jsonata_caught(index, catcher, exc, attempt_context):
            return caught(catcher, index, state["Catch"][index], exc, attempt_context)

        return run_with_retry_and_catch(
            self._handlers(name, state),
            self.services,
            context,
            attempt,
            succeed or jsonpath_succeed,
            jsonata_caught if caught is not None else jsonpath_caught,
        )

    @staticmethod
    def _select(state: dict[str, Any], result: Any, context: dict[str, Any]) -> Any:
        if "ResultSelector" in state:
            return resolve_template(state["ResultSelector"], result, context)
        return result

    # -- Pass, Succeed, Fail, Choice, Wait ---------------------------------------------------------

    def _run_Pass(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        if "Parameters" in state:
            effective = resolve_template(state["Parameters"], effective, context)
        result = state.get("Result", effective)
        values = assign_jsonpath(state.get("Assign"), result, context)
        output = write_result(data, result, state.get("ResultPath", "$"))
        output = apply_output_path(output, state.get("OutputPath", NOT_GIVEN), context)
        current_scope().assign(values)
        return _next(state), output

    def _run_Succeed(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        return None, apply_output_path(effective, state.get("OutputPath", NOT_GIVEN), context)

    def _run_Fail(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        def field(field_name: str) -> str | None:
            if field_name in state:
                return state[field_name]
            path = state.get(f"{field_name}Path")
            if path is None:
                return None
            value = evaluate_expression(path, f"{field_name}Path", data, context)
            return _value_text(value)

        raise FailStateError(field("Error"), field("Cause"))

    def _run_Choice(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        from burstmap.local.query.choice_rules import evaluate_choice_rule

        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        for rule in state["Choices"]:
            if evaluate_choice_rule(rule, effective, context):
                next_name, assign = rule["Next"], rule.get("Assign")
                break
        else:
            if "Default" not in state:
                raise StatesError(
                    NO_CHOICE_MATCHED,
                    f"No Choice Rule matched the input in state '{name}' and it has no Default",
                )
            next_name, assign = state["Default"], state.get("Assign")
        values = assign_jsonpath(assign, effective, context)
        output = apply_output_path(effective, state.get("OutputPath", NOT_GIVEN), context)
        current_scope().assign(values)
        return next_name, output

    def _run_Wait(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        now = self.services.clock.now()
        if "Seconds" in state:
            seconds: float = state["Seconds"]
        elif "SecondsPath" in state:
            path = state["SecondsPath"]
            value = read_path(path, effective, context)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not is_number or (isinstance(value, float) and not value.is_integer()):
                raise StateRuntimeError(
                    "The SecondsPath parameter cannot be parsed as a long value: "
                    f"{path} == {_value_text(value)}"
                )
            if value < 0:
                raise StateRuntimeError(
                    f"The SecondsPath parameter references a negative value: {path} == {_value_text(value)}"
                )
            seconds = value
        else:
            if "Timestamp" in state:
                moment = _parse_timestamp(state["Timestamp"])
            else:
                path = state["TimestampPath"]
                value = read_path(path, effective, context)
                moment = _parse_timestamp(value)
                if moment is None:
                    raise StateRuntimeError(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                        f"date-time format string: {path} == {_value_text(value)}"
                    )
            assert moment is not None
            seconds = max(0.0, (moment - now).total_seconds())
        self.services.clock.sleep(seconds)
        values = assign_jsonpath(state.get("Assign"), effective, context)
        output = apply_output_path(effective, state.get("OutputPath", NOT_GIVEN), context)
        current_scope().assign(values)
        return _next(state), output

    # -- Task ---------------------------------------------------------------------------------------

    def _run_Task(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)

        def attempt(attempt_context: dict[str, Any]) -> Any:
            parameters = (
                resolve_template(state["Parameters"], effective, attempt_context)
                if "Parameters" in state
                else effective
            )
            result = self._invoke_lambda(state, parameters, effective, attempt_context, events)
            return self._select(state, result, attempt_context)

        return self._with_retry_and_catch(name, state, data, context, attempt)

    def _timeout_seconds(
        self, state: dict[str, Any], effective: Any, context: dict[str, Any]
    ) -> float | None:
        if "TimeoutSeconds" in state:
            return float(state["TimeoutSeconds"])
        if "TimeoutSecondsPath" in state:
            path = state["TimeoutSecondsPath"]
            value = read_path(path, effective, context)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise StateRuntimeError(
                    f'The TimeoutSecondsPath field refers to value "{_value_text(value)}" which is not a '
                    f"positive integer: {path}"
                )
            return float(value)
        return None

    def _invoke_lambda(
        self,
        state: dict[str, Any],
        parameters: Any,
        effective: Any,
        context: dict[str, Any],
        events: EventCounter,
    ) -> Any:
        request = LambdaRequest.for_task(state["Resource"], parameters)
        require_runtime(self.services, request.function)
        timeout = self._timeout_seconds(state, effective, context)
        return run_task(self.services, request, timeout, events)

    # -- Parallel and Map ---------------------------------------------------------------------------

    @staticmethod
    def _execution_context(context: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in context.items() if key in ("Execution", "StateMachine")}

    def _run_all(self, jobs: list[Callable[[], Any]], concurrency: int) -> list[Any]:
        """Run jobs, at most `concurrency` at once; results in job order; the first failure is raised."""
        if concurrency <= 1 or len(jobs) <= 1:
            return [job() for job in jobs]
        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)), thread_name_prefix="asl")
        try:
            # Each job gets a copy of this thread's context variables (the variable scope among them).
            futures = [pool.submit(contextvars.copy_context().run, job) for job in jobs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_Parallel(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        base = self._execution_context(context)

        def attempt(attempt_context: dict[str, Any]) -> Any:
            branch_input = (
                resolve_template(state["Parameters"], effective, attempt_context)
                if "Parameters" in state
                else effective
            )
            events.next()  # ParallelStateStarted
            outer = current_scope()
            jobs = [
                (
                    lambda branch=branch: self.run_machine(
                        branch, branch_input, base, events, scope=outer.child()
                    )
                )
                for branch in state["Branches"]
            ]
            results = self._run_all(jobs, len(jobs))
            return self._select(state, results, attempt_context)

        return self._with_retry_and_catch(name, state, data, context, attempt)

    def _max_concurrency(self, state: dict[str, Any], effective: Any, context: dict[str, Any]) -> int:
        if "MaxConcurrencyPath" not in state:
            return int(state.get("MaxConcurrency", 0))
        path = state["MaxConcurrencyPath"]
        value = read_path(path, effective, context)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise StateRuntimeError(
                f'The MaxConcurrencyPath field refers to value "{_value_text(value)}" which is not a valid '
                f"integer: {path}"
            )
        if value < 0:
            raise StateRuntimeError(
                f"The MaxConcurrencyPath field refers to a negative value: {path} == {value}"
            )
        return value

    def _run_Map(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ):  # noqa: N802
        effective = apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if is_distributed(state):
            return self._with_retry_and_catch(
                name,
                state,
                data,
                context,
                lambda attempt_context: self._select(
                    state,
                    self._distributed(name, state, processor, effective, attempt_context),
                    attempt_context,
                ),
            )
        base = self._execution_context(context)
        selector = state.get("ItemSelector", state.get("Parameters"))

        def attempt(attempt_context: dict[str, Any]) -> Any:
            items_path = state.get("ItemsPath", "$")
            items = read_path(items_path, effective, attempt_context)
            if not isinstance(items, list):
                raise StateRuntimeError(
                    f"Invalid path '{items_path}': the value must be a JSON array, got '{_value_text(items)}'"
                )
            concurrency = self._max_concurrency(state, effective, attempt_context)
            concurrency = min(concurrency or INLINE_MAP_MAX_CONCURRENCY, INLINE_MAP_MAX_CONCURRENCY)
            events.next()  # MapStateStarted
            outer = current_scope()

            def iteration(index: int, value: Any) -> Any:
                if selector is not None:
                    item_context = {**attempt_context, "Map": {"Item": {"Index": index, "Value": value}}}
                    value = resolve_template(selector, effective, item_context)
                events.next()  # MapIterationStarted
                output = self.run_machine(processor, value, base, events, scope=outer.child())
                events.next()  # MapIterationSucceeded
                return output

            jobs = [
                (lambda index=index, value=value: iteration(index, value))
                for index, value in enumerate(items)
            ]
            results = self._run_all(jobs, concurrency)
            events.next()  # MapStateSucceeded
            return self._select(state, results, attempt_context)

        return self._with_retry_and_catch(name, state, data, context, attempt)

    def _distributed(
        self,
        name: str,
        state: dict[str, Any],
        processor: dict[str, Any],
        effective: Any,
        context: dict[str, Any],
        *,
        select_item: Callable[[Any, dict[str, Any]], Any] | None = None,
    ) -> Any:
        def run_child(child_input: Any, child_context: dict[str, Any]) -> Any:
            """One child workflow execution: its own context object, event history and (empty) variables."""
            return self.run_machine(processor, child_input, child_context, EventCounter())

        return run_distributed_map(
            name, state, effective, context, self.services, run_child, select_item=select_item
        )
