"""The Succeed state: ends the (sub-)state machine successfully with its (processed) input."""

from __future__ import annotations

from typing import Any

from burstmap.local.flow.io import JSONATA_IO, JSONPATH_IO
from burstmap.local.query.jsonata import JSONATA, JSONPATH, state_env
from burstmap.local.query.jsonpath import NOT_GIVEN, apply_output_path
from burstmap.local.states.checks import JSONATA_COMMON, JSONPATH_BASE
from burstmap.local.states.step import Step

FIELDS = {JSONPATH: JSONPATH_BASE, JSONATA: JSONATA_COMMON | {"Output"}}


def run(step: Step) -> tuple[str | None, Any]:
    state, data, context = step.state, step.data, step.context
    if step.jsonata:
        return None, JSONATA_IO.finish(state, state_env(data, context), data)
    effective = JSONPATH_IO.effective_input(state, data, context)
    return None, apply_output_path(effective, state.get("OutputPath", NOT_GIVEN), context)
