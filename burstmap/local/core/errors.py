"""ASL errors: the predefined error names, the error a state raises, and the definition errors.

Sources: the Amazon States Language specification ("Errors") and the AWS developer guide page
"Handling errors in Step Functions workflows". How retriers and catchers match an error is in
flow/retry_catch.py.
"""

from __future__ import annotations

from typing import Any

# Predefined error names (ASL specification, "Error names").
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"


class StatesError(Exception):
    """An ASL error: a name that Retry and Catch match, and an optional cause text."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause

    def as_output(self) -> dict[str, Any]:
        """The error output a catcher passes on: {"Error", "Cause"} (absent fields left out)."""
        output: dict[str, Any] = {}
        if self.error is not None:
            output["Error"] = self.error
        if self.cause is not None:
            output["Cause"] = self.cause
        return output


class StateRuntimeError(StatesError):
    """`States.Runtime` raised below the state runner, which prefixes the cause with the state name
    and its entered event id: "An error occurred while executing the state 'X' (entered at the
    event id #N). <detail>"."""

    def __init__(self, detail: str) -> None:
        super().__init__(RUNTIME, detail)
        self.detail = detail


class QueryEvaluationError(StateRuntimeError):
    """`States.QueryEvaluationError`, raised below the state runner, which prefixes the cause with the
    state name and its entered event id (as for States.Runtime). Retry and Catch can match it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.error = QUERY_EVALUATION_ERROR


class FailStateError(StatesError):
    """A Fail state: its Error and Cause may both be absent (then ExecutionFailed has neither)."""

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error, cause)  # type: ignore[arg-type]


class ExecutionAborted(Exception):
    """The execution was stopped (StopExecution, or its TimeoutSeconds passed): raised where the engine
    notices, it ends the run at once. Not an ASL error, so no Retry or Catch handles it."""


class DefinitionError(ValueError):
    """A state machine definition that AWS would reject when the state machine is created."""


class InvalidDefinition(DefinitionError):
    """A distributed Map value AWS rejects: a DefinitionError at load time, and, for a JSONata map
    whose value came from an expression, a States.QueryEvaluationError when the state runs."""


class UnsupportedFeature(DefinitionError):
    """A field or state the local engine does not run: refused at load time, never ignored."""


def unsupported(field_name: str, state_name: str) -> UnsupportedFeature:
    """The one wording for a refused field: names the field and the state."""
    return UnsupportedFeature(f"not supported locally: '{field_name}' in state '{state_name}'")


def runtime_cause(state_name: str, event_id: int, detail: str) -> str:
    """AWS's States.Runtime cause: which state, its StateEntered event id, then the detail."""
    return (
        f"An error occurred while executing the state '{state_name}' "
        f"(entered at the event id #{event_id}). {detail}"
    )
