"""Running a state machine: from StartAt, state by state, until a terminal state.

Each state is entered with its raw input and a context object with `$$.State`; its type's module
(kinds.py) runs it in its query language and returns the next state's name (None at the end) and
its output. A States.Runtime (or JSONata's States.QueryEvaluationError) raised below gets AWS's
cause prefix naming the state and its entered event id.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.context import EventCounter, Services, iso_timestamp
from burstmap.local.core.errors import ExecutionAborted, StateRuntimeError, StatesError, runtime_cause
from burstmap.local.core.history import STATE_ENTERED, STATE_EXITED, state_entered, state_exited
from burstmap.local.dmap.child_ledger import ResumeAt
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
        start_at: str | None = None,
    ) -> Any:
        """Run from StartAt (or `start_at`, where a redrive resumes) to a terminal state; return the
        output or raise StatesError.

        `scope` holds the workflow variables its states read and assign: a child of the enclosing
        scope for a Parallel branch or an inline Map iteration, a new one (the default) for an
        execution or a distributed Map's child execution. An error (or an abort) leaving this machine
        carries `unsuccessful`, where it stopped (a ResumeAt); an enclosing machine overwrites it, so
        the outermost one's is what remains.
        """
        if self.query_language is None:
            self.query_language = machine.get("QueryLanguage", JSONPATH)
        states = machine["States"]
        name = start_at or machine["StartAt"]
        with using_scope(scope if scope is not None else VariableScope()) as current:
            while True:
                try:
                    name_next, output = self.run_state(name, states[name], data, context, events)
                except (StatesError, ExecutionAborted) as exc:
                    exc.unsuccessful = ResumeAt(name, data, current.visible())  # type: ignore[union-attr]
                    raise
                if name_next is None:
                    return output
                name, data = name_next, output

    def run_state(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], events: EventCounter
    ) -> tuple[str | None, Any]:
        """Enter one state, run it, leave it: (the next state's name or None, its output). A stopped
        execution (its Cancellation) raises ExecutionAborted as a state begins or ends."""
        cancellation = self.services.cancellation
        if cancellation is not None:
            cancellation.check()
        kind = state["Type"]
        entered = events.emit(STATE_ENTERED[kind], lambda: state_entered(name, data))
        self.services.stats.add("state_transitions")
        state_context = {key: value for key, value in context.items() if key != "Map"}
        state_context["State"] = {"EnteredTime": iso_timestamp(self.services.clock.now()), "Name": name}
        language = state.get("QueryLanguage", self.query_language)
        step = Step(self, name, state, data, state_context, events, language)
        try:
            next_name, output = STATE_TYPES[kind].run(step)
        except StateRuntimeError as exc:  # States.Runtime, or States.QueryEvaluationError (JSONata)
            raise StatesError(exc.error, runtime_cause(name, entered, exc.detail)) from exc
        if cancellation is not None:  # stopped while the state ran: its result is not kept
            cancellation.check()
        if kind != "Fail":
            events.emit(STATE_EXITED[kind], lambda: state_exited(name, output))
        check_output_size(name, output)
        return next_name, output

    def handlers(self, name: str, state: dict[str, Any]) -> ErrorHandlers:
        """The state's Retry and Catch, parsed once per execution."""
        key = id(state)
        parsed = self._handlers.get(key)
        if parsed is None:
            parsed = self._handlers[key] = ErrorHandlers.parse(name, state)
        return parsed
