"""The local engine: run an Amazon States Language definition on this machine.

    from burstmap.local import execute
    result = execute(definition, {"size": 3}, functions={"compute": my_handler})
    result.status, result.output, result.error, result.cause

Anything the engine does not run is refused before the first state runs, with UnsupportedFeature
naming the field and the state. The layers, each using only those before it: core (errors,
limits, context) <- query (JSONPath, intrinsics, variables, JSONata, Choice rules) <- flow
(Lambda invocation, Retry/Catch, input and output processing) <- dmap (the distributed Map) <-
states (one module per state type) <- execute.
"""

from __future__ import annotations

from burstmap.local.core.context import Cancellation, Clock, ExecutionResult, FakeClock, RealClock
from burstmap.local.core.errors import DefinitionError, StatesError, UnsupportedFeature
from burstmap.local.core.history import HistoryEvent
from burstmap.local.execution import InputTooLarge, NotRedrivable, RedrivePoint, execute, load_definition

__all__ = [
    "Cancellation",
    "Clock",
    "DefinitionError",
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
