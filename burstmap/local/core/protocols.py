"""What the engine needs from the layers above it, as protocols: the Lambda service it invokes and
the runner of a distributed Map's child executions.

The engine never imports burstmap.local.services: a LambdaRuntime (or a test's stand-in) is passed
in as `Services.runtime`, and the states layer hands the distributed Map a `RunChild`.
"""

from __future__ import annotations

from typing import Any, Protocol


class Invocation(Protocol):
    """What lambda:Invoke returned: the response payload and, for a failed handler, its error."""

    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str


class InvocationDispatcher(Protocol):
    """Invocations of one function sent and collected by a single thread, without a thread each."""

    @property
    def pending(self) -> int:
        """Invocations submitted and not yet answered."""
        ...

    def submit(self, payload: bytes, token: Any) -> None:
        """Queue one invocation; `token` comes back with its answer. May raise StatesError (refused)."""
        ...

    def wait(self, timeout: float | None = None) -> list[tuple[Any, Invocation | Exception]]:
        """Answers ready within `timeout`: (token, Invocation, or the StatesError that refused it)."""
        ...

    def abandon(self) -> None:
        """Give up every pending invocation (the map run failed)."""
        ...


class LambdaService(Protocol):
    """The Lambda service the Task state and the distributed Map invoke (`Services.runtime`).

    A LambdaRuntime also has `workers` (the worker processes per function, which bound a
    distributed Map's threads) and `dispatcher(function)`, an InvocationDispatcher for a
    worker-served function or None; the engine uses both when present."""

    def invoke(self, function: str, payload: bytes) -> Invocation:
        """Invoke synchronously; raises StatesError when the service refuses (throttling, no such
        function, a payload that is not JSON)."""
        ...


def dispatcher_for(runtime: Any, function: str) -> InvocationDispatcher | None:
    """The runtime's dispatcher for `function`, when it offers one."""
    dispatcher = getattr(runtime, "dispatcher", None)
    return dispatcher(function) if dispatcher is not None else None


class RunChild(Protocol):
    """Runs one child workflow execution of a distributed Map: (child input, its context object) ->
    its output; a failed child raises an exception carrying an ASL `error` (and `cause`). A redriven
    STANDARD child is resumed: `resume` (a dmap.child_ledger.ResumeAt) names the state it failed in,
    that state's input and the variables it saw."""

    def __call__(self, child_input: Any, child_context: dict[str, Any], resume: Any = None) -> Any: ...
