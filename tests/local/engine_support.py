"""What the engine's state-machine tests share: a definition built from states in order, one-state
definitions, and an execution against in-process handlers on a fake clock."""

from __future__ import annotations

from typing import Any

from burstmap.local import ExecutionResult, FakeClock, execute
from tests.local.fake_lambda import FakeRuntime

ARN = "arn:aws:lambda:us-east-1:111111111111:function:echo"
"""The function the default handler answers as: it returns its event."""


def chain(*states: tuple[str, dict[str, Any]], language: str = "JSONPath") -> dict[str, Any]:
    """States in order; each without Next/End gets Next to the following one (End for the last)."""
    named = dict(states)
    names = list(named)
    for position, name in enumerate(names):
        state = named[name]
        if state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state and "End" not in state:
            if position + 1 < len(names):
                state["Next"] = names[position + 1]
            else:
                state["End"] = True
    return {"QueryLanguage": language, "StartAt": names[0], "States": named}


def one(state: dict[str, Any]) -> dict[str, Any]:
    """A definition of one state named S, which ends the machine."""
    return {"StartAt": "S", "States": {"S": {"End": True, **state}}}


def run(
    definition: dict[str, Any] | str, data: Any = None, clock: FakeClock | None = None, **handlers: Any
) -> ExecutionResult:
    """Execute with the given handlers (by function name; default: echo) on a fake clock."""
    runtime = FakeRuntime(handlers or {"echo": lambda event: event})
    return execute(definition, {} if data is None else data, runtime=runtime, clock=clock or FakeClock())
