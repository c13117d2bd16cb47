"""Retry and Catch: retrier defaults and backoff, error matching, and how the engine applies them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from burstmap.local import FakeClock, execute
from burstmap.local.core.context import Services
from burstmap.local.core.errors import DefinitionError, UnsupportedFeature
from burstmap.local.flow.retry_catch import (
    DEFAULT_BACKOFF_RATE,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    Retrier,
    RetryPolicy,
    error_matches,
    parse_catchers,
    parse_retriers,
)
from tests.local.fake_lambda import FakeRuntime

ARN = "arn:aws:lambda:us-east-1:111111111111:function:work"


def test_retrier_defaults_are_the_specifications() -> None:
    retrier = Retrier.from_spec({"ErrorEquals": ["States.ALL"]}, "S")
    assert (retrier.interval_seconds, retrier.max_attempts, retrier.backoff_rate) == (1, 3, 2.0)
    assert (DEFAULT_INTERVAL_SECONDS, DEFAULT_MAX_ATTEMPTS, DEFAULT_BACKOFF_RATE) == (1, 3, 2.0)
    assert retrier.max_delay_seconds is None and retrier.jitter_strategy == "NONE"


def test_backoff_grows_by_the_rate_and_is_capped_by_max_delay() -> None:
    retrier = Retrier.from_spec(
        {"ErrorEquals": ["X"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxDelaySeconds": 5}, "S"
    )
    assert [retrier.delay_seconds(n) for n in range(3)] == [3, 5, 5]


def test_full_jitter_is_uniform_between_zero_and_the_computed_backoff() -> None:
    retrier = Retrier.from_spec({"ErrorEquals": ["X"], "IntervalSeconds": 4, "JitterStrategy": "FULL"}, "S")
    rng = random.Random(1)
    delays = [retrier.delay_seconds(1, rng) for _ in range(200)]
    assert all(0 <= delay <= 8 for delay in delays)
    assert min(delays) < 2 and max(delays) > 6


@pytest.mark.parametrize(
    ("error_equals", "error", "matches"),
    [
        (["States.ALL"], "Anything", True),
        (["States.ALL"], "States.DataLimitExceeded", True),  # as recorded on AWS
        (["States.ALL"], "States.Runtime", False),
        (["States.Runtime"], "States.Runtime", False),  # as recorded on AWS: never caught
        (["States.TaskFailed"], "Lambda.ResourceNotFoundException", True),
        (["States.TaskFailed"], "States.Timeout", False),
        (["States.Timeout"], "States.Timeout", True),
        (["State.ALL"], "Other", False),
    ],
)
def test_error_matching(error_equals: list[str], error: str, matches: bool) -> None:
    assert error_matches(error_equals, error) is matches


def test_states_all_must_be_alone_and_last() -> None:
    with pytest.raises(DefinitionError, match="alone"):
        parse_retriers([{"ErrorEquals": ["States.ALL", "X"]}], "S")
    with pytest.raises(DefinitionError, match="last"):
        parse_catchers(
            [{"ErrorEquals": ["States.ALL"], "Next": "A"}, {"ErrorEquals": ["X"], "Next": "B"}], "S"
        )


def test_bad_retrier_values_are_refused_with_the_value() -> None:
    with pytest.raises(DefinitionError, match="JitterStrategy must be FULL or NONE, got 'SOME'"):
        parse_retriers([{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}], "S")
    with pytest.raises(DefinitionError, match="BackoffRate"):
        parse_retriers([{"ErrorEquals": ["X"], "BackoffRate": 0.5}], "S")
    with pytest.raises(UnsupportedFeature, match="'Retry.Backoff' in state 'S'"):
        parse_retriers([{"ErrorEquals": ["X"], "Backoff": 2}], "S")


def test_the_first_matching_retrier_decides_even_when_its_attempts_are_used_up() -> None:
    policy = RetryPolicy.parse(
        [{"ErrorEquals": ["X"], "MaxAttempts": 1}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}], "S"
    )
    services = Services(runtime=None, rng=random.Random(0))
    attempts = policy.new_attempts()
    assert policy.next_delay("X", attempts, services) == 1
    assert policy.next_delay("X", attempts, services) is None  # not handed on to States.ALL
    assert policy.next_delay("Y", attempts, services) == 1
    assert attempts == [1, 1] and services.stats.retries == 2


class Flaky:
    """Fails `failures` times with the given exception class, then returns what it received."""

    def __init__(self, failures: int, error: type[Exception] = RuntimeError) -> None:
        self.failures, self.error, self.events = failures, error, []

    def __call__(self, event: Any) -> Any:
        self.events.append(event)
        if len(self.events) <= self.failures:
            raise self.error("not yet")
        return event


def _task(**extra: Any) -> dict[str, Any]:
    return {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": ARN, "End": True, **extra}}}


def test_retries_wait_through_the_clock_with_backoff() -> None:
    clock, flaky = FakeClock(), Flaky(3)
    definition = _task(
        Retry=[{"ErrorEquals": ["RuntimeError"], "MaxAttempts": 3}],
        Parameters={"try.$": "$$.State.RetryCount"},
    )
    result = execute(definition, {}, runtime=FakeRuntime({"work": flaky}), clock=clock)
    assert result.status == "SUCCEEDED"
    assert result.output == {"try": 3}
    assert [event["try"] for event in flaky.events] == [0, 1, 2, 3]
    assert clock.sleeps == [1, 2, 4]
    assert result.stats.retries == 3 and result.stats.invocations == 4


@pytest.mark.parametrize(("scale", "sleeps"), [(0.5, [0.5, 1.0]), (0, [])])
def test_retry_time_scale_scales_or_removes_waits(scale: float, sleeps: list[float]) -> None:
    clock = FakeClock()
    definition = _task(Retry=[{"ErrorEquals": ["States.ALL"]}])
    result = execute(
        definition, {}, runtime=FakeRuntime({"work": Flaky(2)}), clock=clock, retry_time_scale=scale
    )
    assert result.status == "SUCCEEDED"
    assert clock.sleeps == sleeps


def test_max_attempts_zero_never_retries() -> None:
    flaky = Flaky(1)
    result = execute(
        _task(Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]),
        {},
        runtime=FakeRuntime({"work": flaky}),
        clock=FakeClock(),
    )
    assert result.status == "FAILED" and result.error == "RuntimeError"
    assert len(flaky.events) == 1


def test_each_retrier_counts_its_own_attempts_in_order() -> None:
    flaky = Flaky(10, error=KeyError)
    definition = _task(
        Retry=[
            {"ErrorEquals": ["Nope"], "MaxAttempts": 5},
            {"ErrorEquals": ["KeyError"], "MaxAttempts": 2},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 4},
        ]
    )
    result = execute(definition, {}, runtime=FakeRuntime({"work": flaky}), clock=FakeClock())
    assert result.error == "KeyError"
    assert len(flaky.events) == 3  # the first matching retrier alone decides


def test_catch_result_path_places_the_error_output_in_the_input() -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": ARN,
                "Next": "Done",
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Handled", "ResultPath": "$.err"}],
            },
            "Handled": {"Type": "Pass", "End": True},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    result = execute(
        definition, {"keep": 1}, runtime=FakeRuntime({"work": Flaky(5, ValueError)}), clock=FakeClock()
    )
    assert result.status == "SUCCEEDED"
    assert result.output["keep"] == 1
    assert result.output["err"]["Error"] == "ValueError"
    assert '"errorMessage": "not yet"' in result.output["err"]["Cause"]  # direct ARN: the runtime's text


def test_task_timeout_is_states_timeout_and_task_failed_does_not_catch_it() -> None:
    clock = FakeClock()

    def slow(event: Any) -> Any:
        clock.sleep(10)
        return event

    catch = [
        {"ErrorEquals": ["States.TaskFailed"], "Next": "Failed"},
        {"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"},
    ]
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": ARN, "TimeoutSeconds": 5, "End": True, "Catch": catch},
            "Failed": {"Type": "Pass", "Result": "failed", "End": True},
            "TimedOut": {"Type": "Pass", "Result": "timed out", "End": True},
        },
    }
    result = execute(definition, {}, runtime=FakeRuntime({"work": slow}), clock=clock)
    assert result.output == "timed out"


def test_runtime_errors_are_never_caught() -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Pass", "OutputPath": "$.missing", "End": True},
        },
    }
    definition["States"]["Work"]["Type"] = "Task"
    definition["States"]["Work"].update(Resource=ARN, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Work"}])
    result = execute(definition, {}, runtime=FakeRuntime({"work": lambda event: event}), clock=FakeClock())
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'Work' (entered at the event id #2). "
        "Invalid path '$.missing' : No results for path: $['missing']"
    )


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("IntervalSeconds", [0, 1.5, 100_000_000, "1"], [1, 99_999_999]),
        ("MaxAttempts", [-1, 2.5, 100_000_000], [0, 99_999_999]),
        ("MaxDelaySeconds", [0, 0.5, 31_622_401], [1, 31_622_400]),
    ],
)
def test_retrier_integer_fields_take_the_guides_ranges(field: str, bad: list[Any], good: list[Any]) -> None:
    """Guide, "Retrying after an error"
    (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html):
    IntervalSeconds is "a positive integer" of at most 99999999, MaxAttempts an integer of at most
    99999999 (0: never retry), MaxDelaySeconds "greater than 0 and less than 31622401"."""
    for value in bad:
        with pytest.raises(DefinitionError, match=f"{field} must be an integer from"):
            Retrier.from_spec({"ErrorEquals": ["X"], field: value}, "S")
    for value in good:
        assert Retrier.from_spec({"ErrorEquals": ["X"], field: value}, "S")
