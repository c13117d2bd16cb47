"""The example app's stack: BurstCompute with the seed workload as compute, and the outputs a user needs.

``build_app()`` is what ``app.py`` runs; the tests call it in-process too.
CDK context switches (``cdk deploy -c burstmap:tolerated_failure_count=10``) override some construct props
at deploy time, without editing the stack. The batch size and the concurrency are not among them: a local
run sets those on the synthesized definition (``burstmap run --batch-size``, any app), and a deployed job
gets them from the stack's code, so a context key for them would be a second, silent way to change a
deployment; the stack refuses it by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from burstmap.cdk.assets import lambdas_dir
from burstmap.cdk.construct import BurstCompute
from burstmap.cdk.layer import BurstmapLayer
from burstmap.cdk.props import DEFAULT_ARCHITECTURE, DEFAULT_RUNTIME

#: The repository root (where cdk.json and app.py live).
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: The example app's stack name (``burstmap run --stack`` reads its outputs).
STACK_NAME = "BurstmapExample"
#: Prefix of the CDK context keys that override BurstCompute props.
CONTEXT_PREFIX = "burstmap:"
#: The example workload's batch size, not the construct's default (50): its results are big. a(i) has about
#: 2.16 * i decimal digits and a batch's results share one child's 256 KiB state output, so a batch of 50
#: fails past ~2,400 items and even 5 past ~24,000; one item a child works up to i ~ 120,000 (where a single
#: result passes 256 KiB). At the example's sizes (<= 16,384) batching would save under $0.70 of state
#: transitions a job. ``burstmap run --batch-size 5`` batches a local run anyway.
EXAMPLE_BATCH_SIZE = 1


class ContextOverrideError(ValueError):
    """A ``-c burstmap:...`` value is unknown or not a number; the message names the key and the fix."""


def _positive_int(text: Any) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("negative")
    return value


#: The construct props that CDK context may override, with the parser of each (context values from the
#: CLI arrive as strings, from cdk.json or App(context=...) as JSON values).
CONTEXT_OVERRIDES: dict[str, Callable[[Any], Any]] = {
    "max_input_bytes_per_batch": _positive_int,
    "tolerated_failure_count": _positive_int,
    "tolerated_failure_percentage": float,
    "retry_attempts": _positive_int,
}


def overrides_from_context(scope: Construct) -> dict[str, Any]:
    """Read ``burstmap:<prop>`` context values into BurstCompute keyword arguments."""
    unknown = sorted(
        key
        for key in scope.node.get_all_context()
        if key.startswith(CONTEXT_PREFIX) and key[len(CONTEXT_PREFIX) :] not in CONTEXT_OVERRIDES
    )
    if unknown:
        raise ContextOverrideError(
            f"context {', '.join(unknown)} is not read by the example stack: it reads "
            f"{', '.join(CONTEXT_PREFIX + name for name in CONTEXT_OVERRIDES)}. Batch size and concurrency "
            "are set in the stack (BurstCompute batch_size, max_concurrency) and, for a local run, with "
            "burstmap run --batch-size / --max-concurrency"
        )
    overrides: dict[str, Any] = {}
    context = scope.node.try_get_context
    for name, parse in CONTEXT_OVERRIDES.items():
        raw = context(f"{CONTEXT_PREFIX}{name}")
        if raw is None:
            continue
        try:
            overrides[name] = parse(raw)
        except (TypeError, ValueError):
            raise ContextOverrideError(
                f"context {CONTEXT_PREFIX}{name} must be a non-negative number, got {raw!r}: "
                f"pass e.g. -c {CONTEXT_PREFIX}{name}=10"
            ) from None
    return overrides


class BurstmapExampleStack(cdk.Stack):
    """One BurstCompute job whose compute is the seed workload (lambdas/example_compute)."""

    def __init__(self, scope: Construct, construct_id: str = STACK_NAME, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="burstmap example: a Distributed Map job", **kwargs)
        layer = BurstmapLayer.of(self)
        self.compute_function = lambda_.Function(
            self,
            "ExampleCompute",
            runtime=DEFAULT_RUNTIME,
            architecture=DEFAULT_ARCHITECTURE,
            code=lambda_.Code.from_asset(
                str(lambdas_dir() / "example_compute"), exclude=["__pycache__", "*.pyc", "tests"]
            ),
            handler="handler.handler",
            layers=[layer],
            # Big-integer arithmetic is CPU-bound: 1,769 MB buys one full vCPU.
            memory_size=1769,
            timeout=cdk.Duration.minutes(1),
            description="burstmap example compute: byte strings of 1- to 4-byte characters",
            log_group=logs.LogGroup(self, "ExampleComputeLogs", retention=logs.RetentionDays.ONE_MONTH),
        )
        props: dict[str, Any] = {"batch_size": EXAMPLE_BATCH_SIZE, **overrides_from_context(self)}
        self.job = BurstCompute(self, "Job", compute=self.compute_function, **props)
        cdk.CfnOutput(
            self,
            "StateMachineArn",
            value=self.job.state_machine.state_machine_arn,
            description="aws stepfunctions start-execution --state-machine-arn <this>",
        )
        cdk.CfnOutput(
            self,
            "BucketName",
            value=self.job.bucket.bucket_name,
            description="Where item lists and results are written",
        )
        cdk.Validations.of(self.compute_function).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                reason="The AWS managed basic execution role only lets the function write its own logs.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-L1",
                reason="Python 3.13 is chosen deliberately (see README, Runtime): the newest runtime the "
                "project's handlers are tested on.",
            ),
        )


def cdk_json_context(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """cdk.json's ``context``: the feature flags ``python app.py`` must honour as ``cdk synth`` does."""
    path = project_dir / "cdk.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: run app.py from a burstmap checkout") from None


def build_app(context: Mapping[str, Any] | None = None, **app_kwargs: Any) -> cdk.App:
    """The example app: cdk.json's context first, then ``context`` (and the CLI's -c values) over it."""
    merged = {**cdk_json_context(), **(context or {})}
    app = cdk.App(context=merged, **app_kwargs)
    BurstmapExampleStack(app, STACK_NAME)
    return app
