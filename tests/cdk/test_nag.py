"""cdk-nag on the construct's other shapes: input_prefix mode with the upload rule, custom prefixes and
tracing. Only the user's own compute function needs acknowledgements (as the example stack has)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from cdk_support import inline_function
from test_app import CFN_LINT_IGNORED

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


def test_a_kms_encrypted_bucket_leaves_no_unacknowledged_finding(tmp_path: Path) -> None:
    """The key grants for a KMS bucket (grants.py: kms:GenerateDataKey* and the grant's ReEncrypt*
    on that key only) are acknowledged where the construct makes them, in both shapes; cfn-lint
    passes on both templates. (The user's bucket logs through a bucket policy, as cdk.json's flag
    has it, not the legacy AccessControl cfn-lint warns about.)"""
    flags = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False, context=flags)
    for name, props in (("Items", {}), ("Objects", {"input_prefix": "input", "start_on_upload": True})):
        stack = cdk.Stack(app, name)
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        bucket = s3.Bucket(
            stack,
            "Data",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            enforce_ssl=True,
            server_access_logs_prefix="access-logs/",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        )
        BurstCompute(stack, "Job", compute=_users_compute(stack), bucket=bucket, **props)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises ValidationFailed on any unacknowledged finding
    report = tmp_path / "validation-report.json"
    reports = json.loads(report.read_text())["pluginReports"] if report.exists() else []
    assert [v for r in reports for v in r["violations"]] == []
    templates = [stack.template_full_path for stack in assembly.stacks]
    lint = [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", *CFN_LINT_IGNORED, "--"]
    result = subprocess.run([*lint, *templates], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
