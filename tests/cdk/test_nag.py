"""cdk-nag on the construct's other shapes: input_prefix mode with the upload rule, custom prefixes and
tracing. Only the user's own compute function needs acknowledgements (as the example stack has)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from cdk_nag import AwsSolutionsChecks
from cdk_support import inline_function

from burstmap.cdk.construct import BurstCompute


def _users_compute(stack: cdk.Stack) -> lambda_.Function:
    """A user's function, with the acknowledgements a user would write for it."""
    compute = inline_function(stack, "Compute")
    cdk.Validations.of(compute).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            reason="test: the user's function keeps the basic execution role",
        ),
        cdk.Acknowledgment(id="AwsSolutions-L1", reason="test: the user's runtime choice"),
    )
    return compute


def test_other_construct_shapes_leave_no_unacknowledged_finding(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    objects = cdk.Stack(app, "Objects")
    BurstCompute(objects, "Job", compute=_users_compute(objects), input_prefix="input", start_on_upload=True)
    custom = cdk.Stack(app, "Custom")
    BurstCompute(
        custom,
        "Job",
        compute=_users_compute(custom),
        items_prefix="a/items",
        result_prefix="a/results",
        tracing=True,
        batch_size=8,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on any unacknowledged finding
    report = tmp_path / "validation-report.json"
    reports = json.loads(report.read_text())["pluginReports"] if report.exists() else []
    assert [v for r in reports for v in r["violations"]] == []
