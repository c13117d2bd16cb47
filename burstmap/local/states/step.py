"""One state being run: what every state type's runner is given, and the shared steps of running.

The interpreter (interpreter.py) builds a `Step` for each state it enters and hands it to the
state type's module; a state that runs nested state machines (Parallel, Map) does so through
`Step.machine`, so no state module imports the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from burstmap.local.core.context import EventCounter, Services
from burstmap.local.core.errors import StatesError
from burstmap.local.flow.io import StateIO, io_for
from burstmap.local.flow.retry_catch import Catcher, ErrorHandlers, run_with_retry_and_catch
from burstmap.local.query.jsonata import JSONATA
from burstmap.local.query.variables import VariableScope


class Machine(Protocol):
    """The interpreter, as the states see it."""

    services: Services

    def run_machine(
        self,
        machine: dict[str, Any],
        data: Any,
        context: dict[str, Any],
        events: EventCounter,
        *,
        scope: VariableScope | None = None,
    ) -> Any:
        """Run a (sub-)state machine from StartAt to a terminal state; its output."""
        ...

    def handlers(self, name: str, state: dict[str, Any]) -> ErrorHandlers:
        """The state's Retry and Catch, parsed once per execution."""
        ...


@dataclass
class Step:
    """A state entered with its raw input and its context object (with `$$.State`)."""

    machine: Machine
    name: str
    state: dict[str, Any]
    data: Any
    context: dict[str, Any]
    events: EventCounter
    language: str

    @property
    def services(self) -> Services:
        return self.machine.services

    @property
    def jsonata(self) -> bool:
        return self.language == JSONATA

    @property
    def io(self) -> StateIO:
        return io_for(self.language)

    def next_state(self) -> str | None:
        """The state's Next, or None when it ends the machine."""
        return None if self.state.get("End") else self.state.get("Next")

    def execution_context(self) -> dict[str, Any]:
        """The context object a Parallel branch or an inline Map iteration starts with."""
        return {key: value for key, value in self.context.items() if key in ("Execution", "StateMachine")}

    def with_retry_and_catch(self, work: Callable[[dict[str, Any]], Any]) -> tuple[str | None, Any]:
        """Run `work(attempt_context)` under the state's Retry and Catch (the attempt's context has
        `$$.State.RetryCount`), its result selected; then the state's output, or, for a caught
        error, the catch clause's."""
        io, state, data = self.io, self.state, self.data

        def attempt(attempt_context: dict[str, Any]) -> Any:
            return io.select(state, work(attempt_context), attempt_context)

        def succeeded(result: Any, attempt_context: dict[str, Any]) -> tuple[str | None, Any]:
            return self.next_state(), io.succeeded(state, data, result, attempt_context, self.context)

        def caught(
            index: int, catcher: Catcher, error: StatesError, attempt_context: dict[str, Any]
        ) -> tuple[str | None, Any]:
            return catcher.next, io.caught(state, index, catcher, data, error, attempt_context)

        handlers = self.machine.handlers(self.name, state)
        return run_with_retry_and_catch(handlers, self.services, self.context, attempt, succeeded, caught)
