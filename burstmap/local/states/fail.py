"""The Fail state: ends the execution with an error name and a cause, both optional.

JSONPath takes them literally (Error, Cause) or from the input (ErrorPath, CausePath: a path or an
intrinsic function); JSONata takes each as a literal or an expression. A value that is not a
string is written as JSON.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.errors import DefinitionError, FailStateError
from burstmap.local.core.json_text import value_text
from burstmap.local.query.jsonata import JSONATA, JSONPATH, resolve, state_env
from burstmap.local.query.payload_template import evaluate_expression
from burstmap.local.states.checks import JSONATA_COMMON, StateCheck
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: frozenset({"Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath"}),
    JSONATA: JSONATA_COMMON | {"Error", "Cause"},
}


def validate(check: StateCheck) -> None:
    if check.jsonata:
        return
    for field in ("Error", "Cause"):
        if field in check.state and f"{field}Path" in check.state:
            raise DefinitionError(f"Fail state '{check.name}': give {field} or {field}Path, not both")


def run(step: Step) -> tuple[str | None, Any]:
    raise FailStateError(_field(step, "Error"), _field(step, "Cause"))


def _field(step: Step, name: str) -> str | None:
    state = step.state
    if step.jsonata:
        if name not in state:
            return None
        return value_text(resolve(state[name], name, state_env(step.data, step.context)))
    if name in state:
        return state[name]
    path = state.get(f"{name}Path")
    if path is None:
        return None
    return value_text(evaluate_expression(path, f"{name}Path", step.data, step.context))
