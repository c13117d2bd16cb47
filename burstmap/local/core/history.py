"""An execution's history as GetExecutionHistory shows it: event types and their ``*EventDetails``.

The engine numbers events with the execution's ``EventCounter`` (core/context.py) whether or not
anyone records them, since AWS's ids appear in ``States.Runtime`` causes ("entered at the event id
#N"). Only a recorded execution (``execute(on_event=...)``) builds the events: ``EventCounter.emit``
takes the details as a function it calls when a sink is attached, so an unrecorded run pays for an id
and nothing more. A distributed Map's child executions are never recorded into the parent's history:
AWS keeps them in executions of their own.

The shapes follow botocore's ``stepfunctions`` model (``HistoryEvent`` and each ``*EventDetails``
structure); which events AWS emits for which states, and in which order, follows histories LocalStack
recorded against AWS (``tests/aws/services/stepfunctions/v2/**.snapshot.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from burstmap.local.core.json_text import to_json

LAMBDA_RESOURCE_TYPE = "lambda"
LAMBDA_INVOKE_RESOURCE = "invoke"

_STATE_EVENT_PREFIX = {
    "Task": "TaskState",
    "Pass": "PassState",
    "Choice": "ChoiceState",
    "Wait": "WaitState",
    "Succeed": "SucceedState",
    "Fail": "FailState",
    "Parallel": "ParallelState",
    "Map": "MapState",
}
STATE_ENTERED = {kind: f"{prefix}Entered" for kind, prefix in _STATE_EVENT_PREFIX.items()}
"""State Type -> its entered event type (TaskStateEntered, PassStateEntered, ...)."""
STATE_EXITED = {kind: f"{prefix}Exited" for kind, prefix in _STATE_EVENT_PREFIX.items() if kind != "Fail"}
"""State Type -> its exited event type (a Fail state ends the execution instead)."""


@dataclass(frozen=True)
class HistoryEvent:
    """One GetExecutionHistory event: its id, type, time, the event it follows and its details member."""

    id: int
    type: str
    timestamp: datetime
    previous_event_id: int = 0
    details: dict[str, Any] | None = None
    """The event's ``*EventDetails`` member, e.g. ``{"stateEnteredEventDetails": {"name": "Start", ...}}``."""


Details = Callable[[], dict[str, Any] | None]
"""Builds an event's details member; called only when the execution is recorded."""


def _text(key: str, value: Any) -> dict[str, Any]:
    """``{key: <JSON text>, keyDetails: {"truncated": false}}``: the engine's payloads are at most 256 KiB,
    the size up to which AWS keeps them whole in the history."""
    return {key: to_json(value), f"{key}Details": {"truncated": False}}


def state_entered(name: str, data: Any) -> dict[str, Any]:
    return {"stateEnteredEventDetails": {"name": name, **_text("input", data)}}


def state_exited(name: str, output: Any) -> dict[str, Any]:
    return {"stateExitedEventDetails": {"name": name, **_text("output", output)}}


def error_details(member: str, error: str | None, cause: str | None) -> dict[str, Any]:
    """``{member: {"error", "cause"}}`` with the absent ones left out."""
    details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
    return {member: details}


def map_state_started(length: int) -> dict[str, Any]:
    return {"mapStateStartedEventDetails": {"length": length}}


def map_iteration(member: str, state_name: str, index: int) -> dict[str, Any]:
    """MapIterationStarted/Succeeded/Failed details: the Map state's name and the iteration's index."""
    return {member: {"name": state_name, "index": index}}


def map_run_started(map_run_arn: str) -> dict[str, Any]:
    return {"mapRunStartedEventDetails": {"mapRunArn": map_run_arn}}


def map_run_redriven(map_run_arn: str, redrive_count: int) -> dict[str, Any]:
    return {"mapRunRedrivenEventDetails": {"mapRunArn": map_run_arn, "redriveCount": redrive_count}}


# ------------------------------------------------------------------------------------- Lambda tasks


@dataclass(frozen=True)
class TaskEvents:
    """The events of one Task attempt that invokes Lambda: ``Task*`` events (resourceType ``lambda``,
    resource ``invoke``) for the ``lambda:invoke`` integration, ``LambdaFunction*`` events for a function
    ARN as the Resource."""

    function: str
    integration: bool
    parameters: Any
    payload: bytes
    region: str
    timeout_seconds: float | None

    @property
    def scheduled(self) -> str:
        return "TaskScheduled" if self.integration else "LambdaFunctionScheduled"

    @property
    def started(self) -> str:
        return "TaskStarted" if self.integration else "LambdaFunctionStarted"

    @property
    def succeeded(self) -> str:
        return "TaskSucceeded" if self.integration else "LambdaFunctionSucceeded"

    def ended_badly(self, timed_out: bool) -> str:
        if self.integration:
            return "TaskTimedOut" if timed_out else "TaskFailed"
        return "LambdaFunctionTimedOut" if timed_out else "LambdaFunctionFailed"

    def _resource(self) -> dict[str, Any]:
        return {"resourceType": LAMBDA_RESOURCE_TYPE, "resource": LAMBDA_INVOKE_RESOURCE}

    def _timeout(self) -> dict[str, Any]:
        return {} if self.timeout_seconds is None else {"timeoutInSeconds": int(self.timeout_seconds)}

    def scheduled_details(self) -> dict[str, Any]:
        if self.integration:
            details = {**self._resource(), "region": self.region, "parameters": to_json(self.parameters)}
            return {"taskScheduledEventDetails": {**details, **self._timeout()}}
        text = self.payload.decode("utf-8", errors="replace")
        details = {"resource": self.function, "input": text, "inputDetails": {"truncated": False}}
        return {"lambdaFunctionScheduledEventDetails": {**details, **self._timeout()}}

    def started_details(self) -> dict[str, Any] | None:
        return {"taskStartedEventDetails": self._resource()} if self.integration else None

    def succeeded_details(self, output: Any) -> dict[str, Any]:
        if self.integration:
            return {"taskSucceededEventDetails": {**self._resource(), **_text("output", output)}}
        return {"lambdaFunctionSucceededEventDetails": _text("output", output)}

    def failed_details(self, error: str | None, cause: str | None, timed_out: bool) -> dict[str, Any]:
        event = self.ended_badly(timed_out)
        member = event[0].lower() + event[1:] + "EventDetails"
        details = error_details(member, error, cause)
        if self.integration:
            details[member] = {**self._resource(), **details[member]}
        return details
