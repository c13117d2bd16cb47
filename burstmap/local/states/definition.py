"""Checking a whole definition before anything runs: its structure, transitions and every field.

Raises UnsupportedFeature for what the engine does not run (naming the field and the state) and
DefinitionError for what AWS would reject when the state machine is created. What every state
has (Type, QueryLanguage, Next/End, Retry, Catch, Assign, and JSONata's expression syntax) is
checked here; each state type's own fields by its module (kinds.py).
"""

from __future__ import annotations

import re
from typing import Any

from burstmap.local.core.errors import DefinitionError, unsupported
from burstmap.local.dmap.settings import is_distributed
from burstmap.local.flow.retry_catch import parse_catchers, parse_retriers
from burstmap.local.query.jsonata import JSONATA, JSONPATH, check_syntax, expressions, states_fields_used
from burstmap.local.query.jsonpath import validate_reference_path
from burstmap.local.query.variables import validate_assign
from burstmap.local.states.checks import (
    JSONATA_ONLY_FIELDS,
    JSONPATH_ONLY_FIELDS,
    StateCheck,
    jsonata_only,
    jsonpath_only,
)
from burstmap.local.states.kinds import STATE_TYPES

QUERY_LANGUAGES = (JSONPATH, JSONATA)
_MACHINE_FIELDS = frozenset({"StartAt", "States", "Comment", "Version", "QueryLanguage"})
_PROCESSOR_FIELDS = frozenset({"StartAt", "States", "Comment", "ProcessorConfig"})
_JSONATA_CATCH_FIELDS = frozenset({"ErrorEquals", "Next", "Output", "Assign", "Comment"})
_NESTED = ("ItemProcessor", "Iterator", "Branches")


def validate_definition(definition: Any) -> None:
    """Check a whole definition (see the module docstring)."""
    _validate_machine(definition, "the state machine", top=True)
    _check_variable_scopes(definition, "the state machine", {})


def _validate_machine(
    machine: Any, where: str, *, top: bool = False, processor: bool = False, language: str = JSONPATH
) -> None:
    """`language` is the state machine's top-level QueryLanguage, which every state without its own
    QueryLanguage uses, inside branches and item processors too."""
    if not isinstance(machine, dict):
        raise DefinitionError(f"{where} must be an object with StartAt and States")
    _check_machine_fields(machine, where, top=top, processor=processor)
    if top:
        language = machine.get("QueryLanguage", JSONPATH)
        if language not in QUERY_LANGUAGES:
            raise DefinitionError(f"QueryLanguage of {where} must be JSONPath or JSONata, got {language!r}")
    states = machine.get("States")
    start = machine.get("StartAt")
    if not isinstance(states, dict) or not states:
        raise DefinitionError(f"{where} needs States, an object of named states")
    if start not in states:
        raise DefinitionError(f"StartAt {start!r} of {where} names no state in States")

    def nested(definition: Any, nested_where: str, processor: bool = False) -> None:
        _validate_machine(definition, nested_where, processor=processor, language=language)

    for name, state in states.items():
        _validate_state(name, state, states, language, nested)


def _check_machine_fields(machine: dict[str, Any], where: str, *, top: bool, processor: bool) -> None:
    allowed = _PROCESSOR_FIELDS if processor else _MACHINE_FIELDS
    for key in machine:
        if key in allowed:
            continue
        if top and key == "TimeoutSeconds":
            timeout = machine[key]
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
                raise DefinitionError(f"TimeoutSeconds must be a positive integer, got {timeout!r}")
            continue
        if key in ("Assign", "Variables", "Arguments", "Output"):
            raise unsupported(key, where)
        raise DefinitionError(f"unknown field {key!r} in {where}")


def _state_language(name: str, state: dict[str, Any], machine_language: str) -> str:
    language = state.get("QueryLanguage", machine_language)
    if language not in QUERY_LANGUAGES:
        raise DefinitionError(
            f"QueryLanguage of state '{name}' must be JSONPath or JSONata, got {language!r}"
        )
    if machine_language == JSONATA and language == JSONPATH:
        raise DefinitionError(
            f"state '{name}': 'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' "
            "for whole state machine"
        )
    return language


def _validate_state(
    name: str, state: Any, states: dict[str, Any], machine_language: str, nested: Any
) -> None:
    if not isinstance(state, dict):
        raise DefinitionError(f"state '{name}' must be an object")
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        raise (
            unsupported(f"Type: {kind}", name)
            if isinstance(kind, str)
            else DefinitionError(f"state '{name}' needs a Type")
        )
    check = StateCheck(name, state, states, _state_language(name, state, machine_language), nested)
    _check_fields(check, kind)
    if kind not in ("Choice", "Succeed", "Fail"):
        if ("Next" in state) == bool(state.get("End")):
            raise DefinitionError(f"state '{name}' needs exactly one of Next or \"End\": true")
        if "Next" in state:
            check.next_exists(state["Next"], "Next")
    if not check.jsonata and "ResultPath" in state:
        validate_reference_path(state["ResultPath"], "ResultPath", name)
    _check_catch(check)
    parse_retriers(state.get("Retry"), name)
    if "Assign" in state:
        validate_assign(state["Assign"], "Assign", name, jsonpath=not check.jsonata)
    if check.jsonata:
        checked = {key: value for key, value in state.items() if key not in _NESTED}
        for field, value in expressions(checked, ""):
            check_syntax(value, field.lstrip("/"), name)
            _check_states_access(kind, field.lstrip("/"), value, name)
    validator = getattr(STATE_TYPES[kind], "validate", None)
    if validator is not None:
        validator(check)


_WORK_STATES = ("Task", "Parallel", "Map")
_RESULT_FIELDS = re.compile(r"^(Output|Assign)(?=$|[/\[])")
_ERROR_OUTPUT_FIELDS = re.compile(r"^Catch\[\d+\]/(Output|Assign)(?=$|[/\[])")


def _check_states_access(kind: str, field: str, expression: str, state_name: str) -> None:
    """AWS developer guide, "Reserved variable: $states" (transforming-data.html): `$states.result`
    exists in the Output and Assign of a Task, Parallel or Map state, `$states.errorOutput` in the
    Output and Assign of their Catch clauses; "Attempting to access $states.result or
    $states.errorOutput in fields and states where they are not accessible will be caught at
    creation" of the state machine."""
    for used in sorted(states_fields_used(expression)):
        fields = _RESULT_FIELDS if used == "result" else _ERROR_OUTPUT_FIELDS
        if kind not in _WORK_STATES or not fields.match(field):
            where = "Output and Assign" if used == "result" else "Catch clauses' Output and Assign"
            raise DefinitionError(
                f"the JSONata expression '{expression[2:-2].strip()}' in field '{field}' of state "
                f"'{state_name}' uses $states.{used}, which exists only in the {where} of a Task, "
                "Parallel or Map state"
            )


def _check_fields(check: StateCheck, kind: str) -> None:
    """Every field is one the state type runs in the state's query language (a JSONPath
    distributed Map's fields are checked by dmap.settings)."""
    state, name = check.state, check.name
    allowed = STATE_TYPES[kind].FIELDS[check.language]
    distributed = not check.jsonata and kind == "Map" and is_distributed(state)
    for key in state:
        if key in allowed or key == "QueryLanguage":
            continue
        if key == "Assign" and kind in ("Succeed", "Fail"):
            # Guide, "Passing data between states with variables": "The Assign field in ASL is
            # available at the top level of each state (except Succeed and Fail)".
            raise DefinitionError(
                f"state '{name}': a {kind} state cannot have Assign (it ends the execution or its "
                "branch, so nothing could read the values); assign them in an earlier state"
            )
        if check.jsonata:
            raise jsonpath_only(key, name) if key in JSONPATH_ONLY_FIELDS else unsupported(key, name)
        if key in JSONATA_ONLY_FIELDS:
            raise jsonata_only(key, name)
        if not distributed or key in ("Credentials", "HeartbeatSeconds"):
            raise unsupported(key, name)


def _check_catch(check: StateCheck) -> None:
    """Catch clauses: the query language's fields and Assign, then their targets."""
    state, name = check.state, check.name
    for index, spec in enumerate(state.get("Catch") or []):
        if not isinstance(spec, dict):
            continue
        for key in spec:
            if check.jsonata and key == "ResultPath":
                raise jsonpath_only("Catch.ResultPath", name)
            if check.jsonata and key not in _JSONATA_CATCH_FIELDS:
                raise unsupported(f"Catch.{key}", name)
            if not check.jsonata and key == "Output":
                raise jsonata_only("Catch.Output", name)
        if "Assign" in spec:
            where = f"Catch[{index}]/Assign" if check.jsonata else f"Catch[{index}].Assign"
            validate_assign(spec["Assign"], where, name, jsonpath=not check.jsonata)
    for catcher in parse_catchers(state.get("Catch"), name):
        check.next_exists(catcher.next, "Catch.Next")
        if not check.jsonata:
            validate_reference_path(catcher.result_path, "Catch.ResultPath", name)


def _check_variable_scopes(machine: dict[str, Any], where: str, outer: dict[str, str]) -> None:
    """Refuse a variable assigned both in a scope and in one enclosing it.

    AWS developer guide, "Variable scope" (workflow-variables.html): "A variable exists in a scope if
    any state in the scope assigns a value to it. ... a variable assigned in an inner scope cannot
    have the same name as one assigned in an outer scope." Each Parallel branch and each Map's item
    processor is an inner scope; a Map or Parallel state's own Assign, its Catch clauses' and a
    Choice rule's belong to the scope the state is in. Sibling scopes may share names. `outer`
    maps each name assigned in the enclosing scopes to a state that assigns it.
    """
    own = _assigned_names(machine["States"])
    for name, state_name in own.items():
        if name in outer:
            raise DefinitionError(
                f"variable '${name}' is assigned in state '{state_name}' of {where} and in state "
                f"'{outer[name]}' of a scope enclosing it: a variable assigned in an inner scope (a "
                "Parallel branch or a Map's ItemProcessor) cannot have the same name as one assigned "
                "in an outer scope; rename one of them"
            )
    enclosing = {**outer, **own}
    for state_name, state in machine["States"].items():
        for index, branch in enumerate(state.get("Branches") or []):
            _check_variable_scopes(branch, f"branch {index} of state '{state_name}'", enclosing)
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if processor is not None:
            _check_variable_scopes(processor, f"the ItemProcessor of state '{state_name}'", enclosing)


def _assigned_names(states: dict[str, Any]) -> dict[str, str]:
    """{variable name: the first state that assigns it} over the states of one scope: their Assign,
    their Choice rules' and their Catch clauses' (a JSONPath key's ".$" is not part of the name)."""
    names: dict[str, str] = {}
    for state_name, state in states.items():
        holders = [state, *(state.get("Choices") or []), *(state.get("Catch") or [])]
        for holder in holders:
            assign = holder.get("Assign") if isinstance(holder, dict) else None
            for key in assign or {}:
                names.setdefault(key[:-2] if key.endswith(".$") else key, state_name)
    return names
