"""The execution-level TimeoutSeconds: AWS stops a run that passes it with TIMED_OUT / States.Timeout."""

from __future__ import annotations

import pytest

from burstmap.local import execute
from burstmap.local.core.context import FakeClock
from burstmap.local.core.errors import DefinitionError


def _waiting_machine(timeout: int, wait: int) -> dict:
    return {
        "StartAt": "W",
        "TimeoutSeconds": timeout,
        "States": {"W": {"Type": "Wait", "Seconds": wait, "End": True}},
    }


def test_execution_timeout_seconds_times_out_the_execution() -> None:
    result = execute(_waiting_machine(timeout=5, wait=10), {}, clock=FakeClock())
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")


def test_execution_within_its_timeout_succeeds() -> None:
    assert execute(_waiting_machine(timeout=5, wait=1), {"a": 1}, clock=FakeClock()).output == {"a": 1}


def test_execution_timeout_must_be_a_positive_integer() -> None:
    with pytest.raises(DefinitionError, match="TimeoutSeconds must be a positive integer"):
        execute(_waiting_machine(timeout=0, wait=1), {})
