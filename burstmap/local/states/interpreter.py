"""Running a state machine: from StartAt, state by state, until a terminal state.

Each state is entered with its raw input and a context object with `$$.State`; its type's module
(kinds.py) runs it in its query language and returns the next state's name (None at the end) and
its output. A States.Runtime (or JSONata's States.QueryEvaluationError) raised below gets AWS's
cause prefix naming the state and its entered event id.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.context import EventCounter, Services, iso_timestamp
from burstmap.local.core.errors import StateRuntimeError, StatesError, runtime_cause
from burstmap.local.flow.io import check_output_size
from burstmap.local.flow.retry_catch import ErrorHandlers
from burstmap.local.query.jsonata import JSONPATH
from burstmap.local.query.variables import VariableScope, using_scope
from burstmap.local.states.kinds import STATE_TYPES
from burstmap.local.states.step import Step


class Interpreter:
    """Runs (sub-)state machines of one execution; thread-safe, shared by branches and iterations."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._handlers: dict[int, ErrorHandlers] = {}
        self.query_language: str | None = None
        """The state machine's top-level QueryLanguage, set by the first (top-level) run_machine."""

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
            self.query_language = machine.get("QueryLanguage", JSONPATH)
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
        """Enter one state, run it, leave it: (the next state's name or None, its output)."""
        entered = events.next()
        self.services.stats.add("state_transitions")
        state_context = {key: value for key, value in context.items() if key != "Map"}
        state_context["State"] = {"EnteredTime": iso_timestamp(self.services.clock.now()), "Name": name}
        language = state.get("QueryLanguage", self.query_language)
        step = Step(self, name, state, data, state_context, events, language)
        try:
            next_name, output = STATE_TYPES[state["Type"]].run(step)
        except StateRuntimeError as exc:  # States.Runtime, or States.QueryEvaluationError (JSONata)
            raise StatesError(exc.error, runtime_cause(name, entered, exc.detail)) from exc
        if state["Type"] != "Fail":
            events.next()  # ...StateExited
        check_output_size(name, output)
        return next_name, output

    def handlers(self, name: str, state: dict[str, Any]) -> ErrorHandlers:
        """The state's Retry and Catch, parsed once per execution."""
        key = id(state)
        parsed = self._handlers.get(key)
        if parsed is None:
            parsed = self._handlers[key] = ErrorHandlers.parse(name, state)
        return parsed
