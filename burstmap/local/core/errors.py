"""ASL errors, Retry and Catch: what a state raises, and how retriers and catchers match it.

Sources: the Amazon States Language specification ("Errors", "Retrying after an error",
"Fallback states"), the AWS developer guide page "Handling errors in Step Functions workflows",
the CDK's `JitterType` documentation (FULL: "a random number between 0 and the computed backoff
for the given retry attempt count"), and the AWS-recorded conformance cases, which show two
quirks the specification does not: a `States.Runtime` error is caught by nothing (not even a
catcher naming it), and `States.ALL` does catch `States.DataLimitExceeded`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
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

UNCATCHABLE = frozenset({RUNTIME})
"""Errors that no retrier or catcher handles: AWS failed the execution on a `States.Runtime` from
OutputPath although a catcher named `States.Runtime` (conformance case
lambda_arn_output_path_missing_field_states_runtime)."""

# Retrier defaults, as the specification states them.
DEFAULT_INTERVAL_SECONDS = 1
"""IntervalSeconds: "the number of seconds before the first retry attempt (default 1)"."""
DEFAULT_MAX_ATTEMPTS = 3
"""MaxAttempts: "the maximum number of retry attempts (default 3)"; 0 means never retry."""
DEFAULT_BACKOFF_RATE = 2.0
"""BackoffRate: "the multiplier by which the retry interval increases on each attempt (default 2.0)"."""
JITTER_STRATEGIES = ("FULL", "NONE")
DEFAULT_JITTER_STRATEGY = "NONE"


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


class FailStateError(StatesError):
    """A Fail state: its Error and Cause may both be absent (then ExecutionFailed has neither)."""

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error, cause)  # type: ignore[arg-type]


class DefinitionError(ValueError):
    """A state machine definition that AWS would reject when the state machine is created."""


class InvalidDefinition(DefinitionError):
    """Alias kept for the distributed Map modules' vocabulary (same meaning as DefinitionError)."""


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


def error_matches(error_equals: Sequence[str], error: str | None) -> bool:
    """Whether a retrier's or catcher's ErrorEquals matches an error name.

    `States.ALL` matches every error and `States.TaskFailed` every error but `States.Timeout`;
    `States.Runtime` is matched by nothing (see UNCATCHABLE).
    """
    if error in UNCATCHABLE:
        return False
    for name in error_equals:
        if name in (ALL, error):
            return True
        if name == TASK_FAILED and error != TIMEOUT:
            return True
    return False


def _check_error_equals(error_equals: Any, where: str, state_name: str) -> list[str]:
    if (
        not isinstance(error_equals, list)
        or not error_equals
        or not all(isinstance(name, str) for name in error_equals)
    ):
        raise DefinitionError(
            f"{where} in state '{state_name}' needs ErrorEquals, a non-empty list of strings"
        )
    if ALL in error_equals and len(error_equals) != 1:
        raise DefinitionError(f"{where} in state '{state_name}': States.ALL must appear alone in ErrorEquals")
    return list(error_equals)


def _check_all_last(entries: Sequence[Retrier | Catcher], where: str, state_name: str) -> None:
    for entry in entries[:-1]:
        if ALL in entry.error_equals:
            raise DefinitionError(
                f"{where} in state '{state_name}': the States.ALL entry must be the last one"
            )


def _number(spec: dict[str, Any], name: str, default: float | None, state_name: str, minimum: float) -> Any:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise DefinitionError(
            f"Retry in state '{state_name}': {name} must be a number of at least {minimum}, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class Retrier:
    """One entry of a state's Retry list, with the specification's defaults."""

    error_equals: tuple[str, ...]
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_rate: float = DEFAULT_BACKOFF_RATE
    max_delay_seconds: float | None = None
    jitter_strategy: str = DEFAULT_JITTER_STRATEGY

    _FIELDS = frozenset(
        {
            "ErrorEquals",
            "IntervalSeconds",
            "MaxAttempts",
            "BackoffRate",
            "MaxDelaySeconds",
            "JitterStrategy",
            "Comment",
        }
    )

    @classmethod
    def from_spec(cls, spec: dict[str, Any], state_name: str) -> Retrier:
        """Parse and check one retrier; unknown fields are refused, not ignored."""
        for key in spec:
            if key not in cls._FIELDS:
                raise unsupported(f"Retry.{key}", state_name)
        jitter = spec.get("JitterStrategy", DEFAULT_JITTER_STRATEGY)
        if jitter not in JITTER_STRATEGIES:
            raise DefinitionError(
                f"Retry in state '{state_name}': JitterStrategy must be FULL or NONE, got {jitter!r}"
            )
        max_attempts = _number(spec, "MaxAttempts", DEFAULT_MAX_ATTEMPTS, state_name, 0)
        if not isinstance(max_attempts, int):
            raise DefinitionError(
                f"Retry in state '{state_name}': MaxAttempts must be an integer, got {max_attempts!r}"
            )
        return cls(
            error_equals=tuple(_check_error_equals(spec.get("ErrorEquals"), "Retry", state_name)),
            interval_seconds=_number(spec, "IntervalSeconds", DEFAULT_INTERVAL_SECONDS, state_name, 1),
            max_attempts=max_attempts,
            backoff_rate=_number(spec, "BackoffRate", DEFAULT_BACKOFF_RATE, state_name, 1.0),
            max_delay_seconds=_number(spec, "MaxDelaySeconds", None, state_name, 1),
            jitter_strategy=jitter,
        )

    def matches(self, error: str | None) -> bool:
        return error_matches(self.error_equals, error)

    def delay_seconds(self, retries_done: int, rng: random.Random | None = None) -> float:
        """Wait before retry number `retries_done + 1`: IntervalSeconds * BackoffRate^retries_done,
        capped at MaxDelaySeconds; with FULL jitter a uniform random value between 0 and that."""
        delay = self.interval_seconds * self.backoff_rate**retries_done
        if self.max_delay_seconds is not None:
            delay = min(delay, self.max_delay_seconds)
        if self.jitter_strategy == "FULL":
            delay = (rng or random).uniform(0, delay)
        return float(delay)


@dataclass(frozen=True)
class Catcher:
    """One entry of a state's Catch list; ResultPath defaults to "$" (the error output replaces the input)."""

    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"

    _FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Comment"})

    @classmethod
    def from_spec(cls, spec: dict[str, Any], state_name: str) -> Catcher:
        for key in spec:
            if key not in cls._FIELDS:
                raise unsupported(f"Catch.{key}", state_name)
        next_state = spec.get("Next")
        if not isinstance(next_state, str):
            raise DefinitionError(f"Catch in state '{state_name}' needs Next, the name of a state")
        return cls(
            error_equals=tuple(_check_error_equals(spec.get("ErrorEquals"), "Catch", state_name)),
            next=next_state,
            result_path=spec.get("ResultPath", "$"),
        )

    def matches(self, error: str | None) -> bool:
        return error_matches(self.error_equals, error)


def parse_retriers(specs: Any, state_name: str) -> list[Retrier]:
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise DefinitionError(f"Retry in state '{state_name}' must be a list of retriers")
    retriers = [Retrier.from_spec(spec, state_name) for spec in specs]
    _check_all_last(retriers, "Retry", state_name)
    return retriers


def parse_catchers(specs: Any, state_name: str) -> list[Catcher]:
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise DefinitionError(f"Catch in state '{state_name}' must be a list of catchers")
    catchers = [Catcher.from_spec(spec, state_name) for spec in specs]
    _check_all_last(catchers, "Catch", state_name)
    return catchers


def find_retrier(retriers: Sequence[Retrier], error: str | None) -> int | None:
    """Index of the first retrier whose ErrorEquals matches (retriers are tried in order)."""
    for index, retrier in enumerate(retriers):
        if retrier.matches(error):
            return index
    return None


def find_catcher(catchers: Sequence[Catcher], error: str | None) -> Catcher | None:
    for catcher in catchers:
        if catcher.matches(error):
            return catcher
    return None
