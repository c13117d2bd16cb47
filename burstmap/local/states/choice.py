"""The Choice state: the first rule that matches names the next state (else Default).

JSONPath rules are the comparison operators of choice_rules.py; a JSONata rule is a Condition,
a boolean or an expression that must give one. A matched rule's Assign (and, in JSONata, its
Output) apply; with Default, the state's own.
"""

from __future__ import annotations

import json
from typing import Any

from burstmap.local.core.errors import (
    NO_CHOICE_MATCHED,
    DefinitionError,
    QueryEvaluationError,
    StatesError,
    unsupported,
)
from burstmap.local.flow.io import JSONATA_IO, JSONPATH_IO
from burstmap.local.query.choice_rules import evaluate_choice_rule, validate_choice_rule
from burstmap.local.query.jsonata import JSONATA, JSONPATH, expression_text, is_expression, resolve, state_env
from burstmap.local.query.variables import validate_assign
from burstmap.local.states.checks import JSONATA_COMMON, JSONPATH_BASE, StateCheck, jsonpath_only
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: JSONPATH_BASE | {"Choices", "Default", "Assign"},
    JSONATA: JSONATA_COMMON | {"Choices", "Default", "Output", "Assign"},
}
_JSONATA_RULE_FIELDS = frozenset({"Condition", "Next", "Output", "Assign", "Comment"})


def validate(check: StateCheck) -> None:
    choices = check.state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise DefinitionError(f"Choice state '{check.name}' needs Choices, a non-empty list of rules")
    for index, rule in enumerate(choices):
        if check.jsonata:
            _validate_jsonata_rule(check, index, rule)
        else:
            _validate_jsonpath_rule(check, rule)
    if "Default" in check.state:
        check.next_exists(check.state["Default"], "Default")


def _validate_jsonpath_rule(check: StateCheck, rule: Any) -> None:
    if not isinstance(rule, dict) or "Next" not in rule:
        raise DefinitionError(f"every rule of Choice state '{check.name}' needs Next")
    check.next_exists(rule["Next"], "Choices.Next")
    if "Assign" in rule:
        validate_assign(rule["Assign"], "Choices.Assign", check.name, jsonpath=True)
        rule = {key: value for key, value in rule.items() if key != "Assign"}
    validate_choice_rule(rule, check.name)


def _validate_jsonata_rule(check: StateCheck, index: int, rule: Any) -> None:
    name = check.name
    if not isinstance(rule, dict) or rule.get("Next") not in check.states:
        raise DefinitionError(f"rule {index} of Choice state '{name}' needs Next, a state at the same level")
    for key in rule:
        if key not in _JSONATA_RULE_FIELDS:
            jsonpath_rule = key in ("Variable", "And", "Or", "Not") or key.endswith(
                ("Equals", "Path", "Than")
            )
            raise (
                jsonpath_only(f"Choices.{key}", name)
                if jsonpath_rule
                else unsupported(f"Choices.{key}", name)
            )
    condition = rule.get("Condition")
    if not (is_expression(condition) or isinstance(condition, bool)):
        raise DefinitionError(
            f"rule {index} of Choice state '{name}' needs Condition, a '{{% ... %}}' expression or a boolean"
        )
    if "Assign" in rule:
        validate_assign(rule["Assign"], f"Choices[{index}]/Assign", name, jsonpath=False)


def run(step: Step) -> tuple[str | None, Any]:
    return _run_jsonata(step) if step.jsonata else _run_jsonpath(step)


def _no_match(step: Step) -> StatesError:
    return StatesError(
        NO_CHOICE_MATCHED, f"No Choice Rule matched the input in state '{step.name}' and it has no Default"
    )


def _run_jsonpath(step: Step) -> tuple[str | None, Any]:
    state, context = step.state, step.context
    effective = JSONPATH_IO.effective_input(state, step.data, context)
    for rule in state["Choices"]:
        if evaluate_choice_rule(rule, effective, context):
            next_name, assign = rule["Next"], rule.get("Assign")
            break
    else:
        if "Default" not in state:
            raise _no_match(step)
        next_name, assign = state["Default"], state.get("Assign")
    return next_name, JSONPATH_IO.finish(state, effective, effective, context, assign=assign)


def _run_jsonata(step: Step) -> tuple[str | None, Any]:
    state, data = step.state, step.data
    env = state_env(data, step.context)
    for index, rule in enumerate(state["Choices"]):
        field = f"Choices[{index}]/Condition"
        matched = resolve(rule["Condition"], field, env)
        if not isinstance(matched, bool):
            raise QueryEvaluationError(
                f"The JSONata expression '{expression_text(rule['Condition'])}' specified for the field "
                f"'{field}' returned a non-boolean value: {json.dumps(matched)}"
            )
        if matched:
            return rule["Next"], JSONATA_IO.finish(rule, env, data, prefix=f"Choices[{index}]/")
    if "Default" not in state:
        raise _no_match(step)
    return state["Default"], JSONATA_IO.finish(state, env, data)
