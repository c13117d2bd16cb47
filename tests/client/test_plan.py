"""burstmap.client.plan: counts and costs against hand-computed cases."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from aws_fakes import DEFINITION

from burstmap.client import plan as planning


def test_hand_computed_case_batched_arm64():
    """1,000 items, batches of 10, 200 ms an item, 1,024 MB, arm64, start and combine 1 s each.

    children     = 1000 / 10                    = 100
    transitions  = 4 (parent) + 100 * (1 + 1)   = 204        -> 204 * 0.025 / 1000     = $0.0051
    invocations  = 1 + 100 + 1                  = 102        -> 102 * 0.20 / 1e6       = $0.0000204
    GB-s         = 100 * 2 s * 1 GB + 2 * 1 s * 1 GB = 202   -> 202 * 0.0000133334     = $0.0026933468
    total                                                                              = $0.0078137468
    """
    result = planning.plan_job(
        items=1000, batch_size=10, duration_ms=200, memory_mb=1024, architecture="arm64"
    )
    assert result.child_executions == 100
    assert result.state_transitions == 204
    assert result.lambda_invocations == 102
    assert result.compute_gb_seconds == Decimal(200)
    assert result.gb_seconds == Decimal(202)
    assert result.cost_transitions == Decimal("0.0051")
    assert result.cost_requests == Decimal("0.0000204")
    assert result.cost_duration == Decimal("0.0026933468")
    assert result.cost_total == Decimal("0.0078137468")


def test_hand_computed_case_with_a_partial_batch_x86_and_fractional_milliseconds():
    """25 items in batches of 10 (10, 10, 5), 0.25 ms an item, 512 MB, x86_64, no overhead.

    children    = 3; transitions = 4 + 3 * 2 = 10; invocations = 5
    billed ms   = ceil(2.5) + ceil(2.5) + ceil(1.25) = 3 + 3 + 2 = 8 ms -> 0.008 s * 0.5 GB = 0.004 GB-s
    duration    = 0.004 * 0.0000166667 = 0.0000000666668
    """
    result = planning.plan_job(
        items=25, batch_size=10, duration_ms=0.25, memory_mb=512, architecture="x86_64", overhead_ms=0
    )
    assert (result.child_executions, result.state_transitions, result.lambda_invocations) == (3, 10, 5)
    assert result.gb_seconds == Decimal("0.004")
    assert result.cost_duration == Decimal("0.0000000666668")
    assert result.cost_transitions == Decimal("0.00025")
    assert result.cost_requests == Decimal("0.000001")


def test_zero_items_still_runs_the_parent_states():
    result = planning.plan_job(items=0, overhead_ms=0)
    assert (result.child_executions, result.state_transitions, result.lambda_invocations) == (0, 4, 2)
    assert result.gb_seconds == 0


def test_shape_counted_from_a_definition_matches_the_default_model():
    assert planning.shape_from_definition(DEFINITION) == planning.StateMachineShape(
        parent_states=4, child_states=1
    )
    longer = json.loads(json.dumps(DEFINITION))
    longer["States"]["Start"]["Next"] = "Prepare"
    longer["States"]["Prepare"] = {"Type": "Pass", "Next": "Source"}
    assert planning.shape_from_definition(longer).parent_states == 5
    with pytest.raises(planning.InvalidPlan, match="no distributed Map state"):
        planning.shape_from_definition({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"items": -1}, "--size must be 0 or more, got -1"),
        ({"items": 1, "batch_size": 0}, "--batch-size must be 1 or more, got 0"),
        ({"items": 1, "memory_mb": 20000}, "--memory-mb must be between 128 and 10240"),
        ({"items": 1, "duration_ms": -1}, "--duration-ms must be a finite number, 0 or more, got -1"),
        (
            {"items": 1, "duration_ms": float("nan")},
            "--duration-ms must be a finite number, 0 or more, got nan",
        ),
        (
            {"items": 1, "overhead_ms": float("inf")},
            "--overhead-ms must be a finite number, 0 or more, got inf",
        ),
        ({"items": 1, "architecture": "sparc"}, "--architecture must be arm64 or x86_64, got 'sparc'"),
    ],
)
def test_bad_plan_inputs_say_what_is_wrong(kwargs, message):
    with pytest.raises(planning.InvalidPlan, match=message.replace("(", r"\(")):
        planning.plan_job(**kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe", "cannot read prices file .*: 'utf-8' codec can't decode"),
        (
            b'{"lambda_per_request": "NaN"}',
            "price 'lambda_per_request' .* must be a finite number, 0 or more",
        ),
        (b'{"lambda_per_request": -1}', "price 'lambda_per_request' .* must be a finite number, 0 or more"),
    ],
)
def test_a_bad_prices_file_is_one_line(tmp_path: Path, text: bytes, message: str):
    prices = tmp_path / "prices.json"
    prices.write_bytes(text)
    with pytest.raises(planning.InvalidPlan, match=message):
        planning.load_prices(prices)


def test_a_definition_that_is_not_asl_is_refused_by_name():
    with pytest.raises(planning.InvalidPlan, match="the definition is not an ASL state machine"):
        planning.shape_from_definition([1])  # type: ignore[arg-type]


def test_prices_are_dated_and_overridable_by_file_or_environment(tmp_path: Path, monkeypatch):
    assert planning.DEFAULT_PRICES.region == "us-east-1"
    assert planning.DEFAULT_PRICES.checked == "2026-11-23"
    assert planning.DEFAULT_PRICES.sfn_standard_per_transition == Decimal("0.000025")
    assert planning.DEFAULT_PRICES.lambda_per_request == Decimal("0.0000002")
    overrides = tmp_path / "prices.json"
    overrides.write_text(json.dumps({"region": "sa-east-1", "sfn_standard_per_transition": 0.0000375}))
    assert planning.load_prices(overrides).sfn_standard_per_transition == Decimal("0.0000375")
    monkeypatch.setenv(planning.PRICES_ENV, str(overrides))
    from_env = planning.load_prices()
    assert from_env.region == "sa-east-1"
    assert from_env.lambda_per_request == planning.DEFAULT_PRICES.lambda_per_request  # the rest: defaults


def test_bad_prices_files_are_refused(tmp_path: Path):
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"lambda_per_gb_s": 1}')
    with pytest.raises(
        planning.InvalidPlan, match="unknown price keys .*lambda_per_gb_s; valid keys: region"
    ):
        planning.load_prices(unknown)
    not_number = tmp_path / "nan.json"
    not_number.write_text('{"lambda_per_request": "cheap"}')
    with pytest.raises(planning.InvalidPlan, match="price 'lambda_per_request' .* is not a number"):
        planning.load_prices(not_number)
    with pytest.raises(planning.InvalidPlan, match="cannot read prices file"):
        planning.load_prices(tmp_path / "missing.json")


def test_concurrency_gives_the_compute_wall_time_and_the_timeout_flags_a_long_batch():
    """2,500 items, batches of 10 at 500 ms an item (5 s a batch), 100 at once: 250 children in 3 waves."""
    result = planning.plan_job(
        items=2500, batch_size=10, duration_ms=500, max_concurrency=100, timeout_seconds=3.0
    )
    assert (result.child_executions, result.batch_seconds, result.compute_wall_seconds) == (250, 5.0, 15.0)
    assert result.over_timeout
    table = planning.render(result)
    assert "compute wall time    ~15.0 s (100 at once, 5 s a batch)" in table
    assert "function timeout     3 s a batch (OVER it: lower --batch-size)" in table
    within = planning.plan_job(items=2500, batch_size=10, duration_ms=500, timeout_seconds=60)
    assert not within.over_timeout and within.compute_wall_seconds == 5.0  # no limit: all at once
    assert "function timeout     60 s a batch (within it)" in planning.render(within)
    with pytest.raises(planning.InvalidPlan, match="--max-concurrency must be 0 \\(no limit\\) to 10000"):
        planning.plan_job(items=1, max_concurrency=20_000)
