"""Reuse: another app puts BurstCompute twice in one stack, with its own compute, start, bucket and
props; a PythonFunction compute (aws-lambda-python-alpha) synthesizes with bundling skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_python_alpha as python_alpha
from aws_cdk import aws_s3 as s3
from cdk_support import (
    SKIP_BUNDLING,
    fast_app,
    inline_function,
    logical_id,
    state_machines,
    template_of,
)

from burstmap.cdk.construct import BurstCompute
from burstmap.cdk.layer import BurstmapLayer


@pytest.fixture(scope="module")
def two_jobs() -> dict[str, Any]:
    """A second app: one stack, two jobs sharing a user bucket, one with the default functions."""
    app = fast_app()
    stack = cdk.Stack(app, "Analytics")
    shared = s3.Bucket(stack, "Shared", enforce_ssl=True)
    first = BurstCompute(stack, "Prices", compute=inline_function(stack, "PriceCompute"))
    second = BurstCompute(
        stack,
        "Risk",
        compute=inline_function(stack, "RiskCompute"),
        start=inline_function(stack, "RiskStart"),
        combine=inline_function(stack, "RiskCombine"),
        bucket=shared,
        result_prefix="risk/results",
        items_prefix="risk/items",
        batch_size=25,
        max_concurrency=200,
        tolerated_failure_percentage=5,
    )
    return {
        "stack": stack,
        "first": first,
        "second": second,
        "shared": shared,
        "template": template_of(stack),
    }


def test_two_jobs_get_two_state_machines_that_invoke_their_own_compute(two_jobs: dict[str, Any]) -> None:
    stack, template = two_jobs["stack"], two_jobs["template"]
    machines = state_machines(template)
    assert set(machines) == {logical_id(stack, two_jobs[j].state_machine) for j in ("first", "second")}
    for job_name in ("first", "second"):
        job = two_jobs[job_name]
        asl = machines[logical_id(stack, job.state_machine)]
        compute = asl["States"]["MapPayloadItems"]["ItemProcessor"]["States"]["ComputePayloadItems"]
        assert (
            compute["Parameters"]["FunctionName"]
            == "${GetAtt:" + logical_id(stack, job.compute_function) + ".Arn}"
        )


def test_custom_props_apply_to_their_job_only(two_jobs: dict[str, Any]) -> None:
    stack, template = two_jobs["stack"], two_jobs["template"]
    machines = state_machines(template)
    first = machines[logical_id(stack, two_jobs["first"].state_machine)]["States"]["MapPayloadItems"]
    second = machines[logical_id(stack, two_jobs["second"].state_machine)]["States"]["MapPayloadItems"]
    assert first["ItemBatcher"]["MaxItemsPerBatch"] == 50  # the default
    assert first["MaxConcurrency"] == 900
    assert second["ItemBatcher"]["MaxItemsPerBatch"] == 25
    assert second["MaxConcurrency"] == 200
    assert second["ToleratedFailurePercentage"] == 5
    assert second["ResultWriter"]["Parameters"] == {
        "Bucket": "${Ref:" + logical_id(stack, two_jobs["shared"]) + "}",
        "Prefix": "risk/results",
    }


def test_given_functions_and_bucket_replace_the_defaults(two_jobs: dict[str, Any]) -> None:
    resources = two_jobs["template"]["Resources"]
    buckets = [k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"]
    # The shared bucket plus the first job's own; the second job creates none.
    assert len(buckets) == 2
    second = two_jobs["second"]
    assert second.node.try_find_child("StartFunction") is None
    assert second.node.try_find_child("CombineFunction") is None
    assert second.start_function.node.id == "RiskStart"
    assert two_jobs["first"].node.try_find_child("StartFunction") is two_jobs["first"].start_function
    # A given Function still learns where the job's objects are.
    stack = two_jobs["stack"]
    risk_combine = resources[logical_id(stack, two_jobs["second"].combine_function)]["Properties"]
    assert risk_combine["Environment"]["Variables"]["BURSTMAP_RESULT_PREFIX"] == "risk/results"


def test_the_runtime_layer_is_shared_by_both_jobs(two_jobs: dict[str, Any]) -> None:
    resources = two_jobs["template"]["Resources"]
    layers = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert len(layers) == 1
    assert two_jobs["first"].runtime_layer is two_jobs["second"].runtime_layer
    assert BurstmapLayer.of(two_jobs["stack"]) is two_jobs["first"].runtime_layer


def test_python_function_compute_synthesizes_with_bundling_skipped(tmp_path: Path) -> None:
    """A compute with third-party requirements: PythonFunction bundles in Docker, skipped here."""
    entry = tmp_path / "compute"
    entry.mkdir()
    (entry / "handler.py").write_text(
        "from burstmap.runtime.compute import compute_handler\n\n"
        "@compute_handler\ndef handler(item, parameters):\n    return str(item * 2)\n"
    )
    (entry / "requirements.txt").write_text("numpy==2.2.0\n")
    app = fast_app(SKIP_BUNDLING)
    stack = cdk.Stack(app, "WithPythonFunction")
    compute = python_alpha.PythonFunction(
        stack,
        "Compute",
        entry=str(entry),
        index="handler.py",
        handler="handler",
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=lambda_.Architecture.ARM_64,
        layers=[BurstmapLayer.of(stack)],
    )
    job = BurstCompute(stack, "Job", compute=compute, batch_size=4, compute_reserved_concurrency=50)
    template = template_of(stack)
    properties = template["Resources"][logical_id(stack, compute)]["Properties"]
    assert properties["Handler"] == "handler.handler"
    assert properties["ReservedConcurrentExecutions"] == 50
    (asl,) = state_machines(template).values()
    compute_state = asl["States"]["MapPayloadItems"]["ItemProcessor"]["States"]["ComputePayloadItems"]
    assert compute_state["Parameters"]["FunctionName"] == "${GetAtt:" + logical_id(stack, compute) + ".Arn}"
    assert job.compute_function is compute
