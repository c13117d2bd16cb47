"""The Parallel state: runs every branch on the same input at once; its result is their outputs,
in branch order. Each branch reads the enclosing variables and assigns only its own."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from burstmap.local.core.errors import DefinitionError, StatesError
from burstmap.local.query.jsonata import JSONATA, JSONPATH
from burstmap.local.query.variables import current_scope
from burstmap.local.states.checks import FLOW, JSONATA_COMMON, JSONPATH_BASE, JSONPATH_RESULT, StateCheck
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: JSONPATH_BASE | FLOW | JSONPATH_RESULT | {"Branches", "Parameters", "Assign"},
    JSONATA: JSONATA_COMMON | FLOW | {"Branches", "Arguments", "Output", "Assign", "Retry", "Catch"},
}


def validate(check: StateCheck) -> None:
    branches = check.state.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"Parallel state '{check.name}' needs Branches, a non-empty list")
    for index, branch in enumerate(branches):
        check.machine(branch, f"branch {index} of state '{check.name}'")


def run(step: Step) -> tuple[str | None, Any]:
    effective = step.io.effective_input(step.state, step.data, step.context)
    base = step.execution_context()
    outer = current_scope()

    def attempt(attempt_context: dict[str, Any]) -> Any:
        branch_input = step.io.arguments(step.state, effective, attempt_context)
        events = step.events
        events.emit("ParallelStateStarted")
        jobs = [
            partial(
                step.machine.run_machine, branch, branch_input, base, events.branch(), scope=outer.child()
            )
            for branch in step.state["Branches"]
        ]
        try:
            outputs = run_all(jobs, len(jobs))
        except StatesError:
            events.emit("ParallelStateFailed")
            raise
        events.emit("ParallelStateSucceeded")
        return outputs

    return step.with_retry_and_catch(attempt)


def run_all(jobs: list[Callable[[], Any]], concurrency: int) -> list[Any]:
    """Run jobs, at most `concurrency` at once; results in job order; the first failure is raised."""
    if concurrency <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)), thread_name_prefix="asl")
    try:
        # Each job gets a copy of this thread's context variables (the variable scope among them).
        futures = [pool.submit(contextvars.copy_context().run, job) for job in jobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
