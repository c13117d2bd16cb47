"""Retry and Catch: parsing retriers and catchers, matching errors, and the one retry loop.

A `RetryPolicy` says, given an error and how often each retrier has already retried, how long to
wait before the next attempt, or that the error stands. The Task, Parallel and Map states run
their attempts through `run_with_retry_and_catch`; the distributed Map's one-Task children use
the same policy through `retrying` (on a thread) or `next_delay` (through the dispatcher).

Sources: the Amazon States Language specification ("Retrying after an error", "Fallback
states"), the CDK's `JitterType` documentation (FULL: "a random number between 0 and the computed
backoff for the given retry attempt count"), and the AWS-recorded conformance cases, which show
two quirks the specification does not: a `States.Runtime` error is caught by nothing (not even a
catcher naming it), and `States.ALL` does catch `States.DataLimitExceeded`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from burstmap.local.core.context import Services
from burstmap.local.core.errors import (
    ALL,
    RUNTIME,
    TASK_FAILED,
    TIMEOUT,
    DefinitionError,
    StatesError,
    unsupported,
)

T = TypeVar("T")

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


MAX_INTERVAL_SECONDS = 99_999_999
"""Guide, "Retrying after an error": "IntervalSeconds has a maximum value of 99999999"."""
MAX_MAX_ATTEMPTS = 99_999_999
"""Guide: "MaxAttempts has a maximum value of 99999999"."""
MAX_MAX_DELAY_SECONDS = 31_622_400
"""Guide: MaxDelaySeconds must be "greater than 0 and less than 31622401"."""


def _integer(
    spec: dict[str, Any], name: str, default: int | None, state_name: str, low: int, high: int
) -> Any:
    """A retrier field the guide defines as an integer in [low, high] (IntervalSeconds, MaxAttempts,
    MaxDelaySeconds: "a positive integer"); None when absent without a default."""
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DefinitionError(
            f"Retry in state '{state_name}': {name} must be an integer from {low} to {high}, got {value!r}"
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
        return cls(
            error_equals=tuple(_check_error_equals(spec.get("ErrorEquals"), "Retry", state_name)),
            interval_seconds=_integer(
                spec, "IntervalSeconds", DEFAULT_INTERVAL_SECONDS, state_name, 1, MAX_INTERVAL_SECONDS
            ),
            max_attempts=_integer(spec, "MaxAttempts", DEFAULT_MAX_ATTEMPTS, state_name, 0, MAX_MAX_ATTEMPTS),
            backoff_rate=_number(spec, "BackoffRate", DEFAULT_BACKOFF_RATE, state_name, 1.0),
            max_delay_seconds=_integer(spec, "MaxDelaySeconds", None, state_name, 1, MAX_MAX_DELAY_SECONDS),
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

    _FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Output", "Assign", "Comment"})
    """Output and Assign are the state's query language's to check and apply (flow/io.py)."""

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


@dataclass(frozen=True)
class RetryPolicy:
    """A state's Retry list: given an error and the retries done per retrier, wait or give up."""

    retriers: tuple[Retrier, ...] = ()

    @classmethod
    def parse(cls, specs: Any, state_name: str) -> RetryPolicy:
        return cls(tuple(parse_retriers(specs, state_name)))

    def new_attempts(self) -> list[int]:
        """Retries done so far, per retrier (what `next_delay` reads and counts up)."""
        return [0] * len(self.retriers)

    def next_delay(self, error: str | None, attempts: list[int], services: Services) -> float | None:
        """The backoff before the next attempt, or None: the error stands. The first retrier whose
        ErrorEquals matches decides, even when its attempts are used up; a retry is counted in
        `attempts` and in the execution's stats."""
        for index, retrier in enumerate(self.retriers):
            if retrier.matches(error):
                if attempts[index] >= retrier.max_attempts:
                    return None
                delay = retrier.delay_seconds(attempts[index], services.rng)
                attempts[index] += 1
                services.stats.add("retries")
                return delay
        return None


def retrying(attempt: Callable[[int], T], policy: RetryPolicy, services: Services) -> T:
    """`attempt(retries_so_far)` until it succeeds or raises an error no retrier takes, waiting
    each backoff through `services.retry_wait` and counting each retry."""
    attempts = policy.new_attempts()
    retry_count = 0
    while True:
        try:
            return attempt(retry_count)
        except StatesError as exc:
            delay = policy.next_delay(exc.error, attempts, services)
            if delay is None:
                raise
            retry_count += 1
            services.retry_wait(delay)


@dataclass(frozen=True)
class ErrorHandlers:
    """A state's Retry and Catch, parsed."""

    retry: RetryPolicy
    catchers: tuple[Catcher, ...]

    @classmethod
    def parse(cls, state_name: str, state: dict[str, Any]) -> ErrorHandlers:
        return cls(
            RetryPolicy.parse(state.get("Retry"), state_name),
            tuple(parse_catchers(state.get("Catch"), state_name)),
        )

    def catcher_for(self, error: str | None) -> int | None:
        """Index of the first catcher whose ErrorEquals matches."""
        for index, catcher in enumerate(self.catchers):
            if catcher.matches(error):
                return index
        return None


Succeed = Callable[[Any, dict[str, Any]], tuple[str | None, Any]]
Caught = Callable[[int, Catcher, StatesError, dict[str, Any]], tuple[str | None, Any]]


def run_with_retry_and_catch(
    handlers: ErrorHandlers,
    services: Services,
    context: dict[str, Any],
    attempt: Callable[[dict[str, Any]], Any],
    succeed: Succeed,
    caught: Caught,
) -> tuple[str | None, Any]:
    """Run `attempt(attempt_context)`, where the context has `$$.State.RetryCount`, under the
    state's Retry; then `succeed(result, attempt_context)`, or, for an error a catcher matches,
    `caught(index, catcher, error, attempt_context)`. Each returns (next state, output)."""
    last: dict[str, Any] = context

    def one_attempt(retry_count: int) -> Any:
        nonlocal last
        last = dict(context)
        last["State"] = {**context["State"], "RetryCount": retry_count}
        return attempt(last)

    try:
        result = retrying(one_attempt, handlers.retry, services)
    except StatesError as exc:
        index = handlers.catcher_for(exc.error)
        if index is None:
            raise
        return caught(index, handlers.catchers[index], exc, last)
    return succeed(result, last)
