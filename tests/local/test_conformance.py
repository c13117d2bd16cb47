"""The AWS-recorded conformance cases, one test per execution (see conformance_harness.py)."""

from __future__ import annotations

import pytest

from tests.local.conformance_harness import (
    CONFORMANCE_DIR,
    Execution,
    compare,
    executions,
    load_cases,
    match,
    run_execution,
)

_EXECUTIONS = list(executions(load_cases())) if (CONFORMANCE_DIR / "index.json").exists() else []


@pytest.mark.skipif(not _EXECUTIONS, reason=f"no conformance cases at {CONFORMANCE_DIR}")
@pytest.mark.parametrize("execution", _EXECUTIONS, ids=[execution.id for execution in _EXECUTIONS])
def test_matches_aws(execution: Execution) -> None:
    outcome = run_execution(execution)
    if outcome.status == "skip":
        pytest.skip(outcome.detail)
    assert outcome.status == "pass", outcome.detail


# The comparison itself must be able to fail, or the cases above prove nothing.


def test_bound_placeholder_must_stand_for_the_same_text_each_time() -> None:
    assert match({"a": "<uuid:1>", "b": "x-<uuid:1>"}, {"a": "r1", "b": "x-r1"}, {})
    assert not match({"a": "<uuid:1>", "b": "x-<uuid:1>"}, {"a": "r1", "b": "x-r2"}, {})


def test_event_ids_are_wildcards_but_the_rest_of_the_cause_is_exact() -> None:
    expected = "An error occurred while executing the state 'S' (entered at the event id #2). Detail"
    assert match(expected, expected.replace("#2", "#7"), {})
    assert not match(expected, expected.replace("Detail", "Other"), {})


def test_numbers_compare_by_value_but_booleans_are_not_numbers() -> None:
    assert match({"n": 0.0}, {"n": 0}, {})
    assert not match({"n": 0}, {"n": False}, {})
    assert not match([1, 2], [2, 1], {})
    assert not match({"a": 1}, {"a": 1, "b": 2}, {})


def test_a_wrong_result_is_reported_as_a_difference() -> None:
    from burstmap.local.core.context import ExecutionResult

    case = {"group": "g", "name": "n", "notes": ""}
    execution = Execution(case, 0, {}, {"status": "FAILED", "error": "E", "cause": "C"})
    assert compare(execution, ExecutionResult("FAILED", error="E", cause="C")) is None
    assert "cause" in compare(execution, ExecutionResult("FAILED", error="E", cause="D"))
    assert "status" in compare(execution, ExecutionResult("SUCCEEDED", output={}))
