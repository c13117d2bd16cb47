"""The local engine: run an Amazon States Language definition on this machine.

    from burstmap.local import execute
    result = execute(definition, {"size": 3}, functions={"compute": my_handler})
    result.status, result.output, result.error, result.cause

Anything the engine does not run is refused before the first state runs, with UnsupportedFeature
naming the field and the state. The layers, each using only those before it: core (errors,
limits, context) <- query (JSONPath, intrinsics, variables, JSONata, Choice rules) <- flow
(Lambda invocation, Retry/Catch, input and output processing) <- dmap (the distributed Map) <-
states (one module per state type) <- execute.

Names load on first use: importing a submodule such as ``burstmap.local.core.progress`` (the CLI does, to
show progress) does not load the whole engine, so a command that is refused answers at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.local.core.context import Cancellation, Clock, ExecutionResult, FakeClock, RealClock
    from burstmap.local.core.errors import DefinitionError, StatesError, UnsupportedFeature
    from burstmap.local.core.history import HistoryEvent
    from burstmap.local.execution import (
        ExecuteArgumentError,
        ExecuteArgumentTypeError,
        InputTooLarge,
        NotRedrivable,
        RedrivePoint,
        execute,
        load_definition,
    )

_LAZY = {
    "Cancellation": "burstmap.local.core.context",
    "Clock": "burstmap.local.core.context",
    "ExecutionResult": "burstmap.local.core.context",
    "FakeClock": "burstmap.local.core.context",
    "RealClock": "burstmap.local.core.context",
    "DefinitionError": "burstmap.local.core.errors",
    "StatesError": "burstmap.local.core.errors",
    "UnsupportedFeature": "burstmap.local.core.errors",
    "HistoryEvent": "burstmap.local.core.history",
    "ExecuteArgumentError": "burstmap.local.execution",
    "ExecuteArgumentTypeError": "burstmap.local.execution",
    "InputTooLarge": "burstmap.local.execution",
    "NotRedrivable": "burstmap.local.execution",
    "RedrivePoint": "burstmap.local.execution",
    "execute": "burstmap.local.execution",
    "load_definition": "burstmap.local.execution",
}

__all__ = [
    "Cancellation",
    "Clock",
    "DefinitionError",
    "ExecuteArgumentError",
    "ExecuteArgumentTypeError",
    "ExecutionResult",
    "FakeClock",
    "HistoryEvent",
    "InputTooLarge",
    "NotRedrivable",
    "RealClock",
    "RedrivePoint",
    "StatesError",
    "UnsupportedFeature",
    "execute",
    "load_definition",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'burstmap.local' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
