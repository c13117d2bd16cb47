"""The Pass state: passes its input (or a fixed Result) on, transformed by the query language."""

from __future__ import annotations

from typing import Any

from burstmap.local.flow.io import JSONATA_IO, JSONPATH_IO
from burstmap.local.query.jsonata import JSONATA, JSONPATH, state_env
from burstmap.local.states.checks import FLOW, JSONATA_COMMON, JSONPATH_BASE
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: JSONPATH_BASE | FLOW | {"Result", "ResultPath", "Parameters", "Assign"},
    JSONATA: JSONATA_COMMON | FLOW | {"Output", "Assign"},
}


def run(step: Step) -> tuple[str | None, Any]:
    state, data, context = step.state, step.data, step.context
    if step.jsonata:
        return step.next_state(), JSONATA_IO.finish(state, state_env(data, context), data)
    effective = JSONPATH_IO.arguments(state, JSONPATH_IO.effective_input(state, data, context), context)
    result = state.get("Result", effective)
    return step.next_state(), JSONPATH_IO.finish(state, data, result, context)
