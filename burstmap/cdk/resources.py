"""The resources BurstCompute creates when the props do not name existing ones: the job bucket, the
default start and combine functions, and the upload rule of ``start_on_upload``.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from burstmap.cdk.assets import lambdas_dir
from burstmap.cdk.props import BurstComputeProps


def job_bucket(scope: Construct, props: BurstComputeProps) -> s3.Bucket:
    """A private, TLS-only, encrypted bucket whose job objects expire (EventBridge on for uploads)."""
    bucket = s3.Bucket(
        scope,
        "Bucket",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        lifecycle_rules=[
            s3.LifecycleRule(
                id=f"expire-{prefix}",
                prefix=f"{prefix}/",
                expiration=cdk.Duration.days(props.expire_after_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            )
            for prefix in (props.items_prefix, props.result_prefix)
        ],
    )
    if props.start_on_upload:
        send_events_to_event_bridge(bucket)
    return bucket


def send_events_to_event_bridge(bucket: s3.Bucket) -> None:
    """Turn on the bucket's EventBridge notifications (start_on_upload's rule listens to them).

    Through the CloudFormation property (merged into any notification configuration already there),
    not s3.Bucket(event_bridge_enabled=True), which adds a custom-resource Lambda to set it. A bucket
    whose notifications the L2 already manages (add_event_notification) gets it from that resource,
    which writes the whole configuration and would otherwise drop the property's setting.
    """
    if bucket.node.try_find_child(NOTIFICATIONS_CHILD) is not None:
        bucket.enable_event_bridge_notification()
        return
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.add_property_override(
        "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
    )


EVENT_BRIDGE_SETTING = "NotificationConfiguration.EventBridgeConfiguration"
NOTIFICATIONS_CHILD = "Notifications"
"""The child aws-cdk-lib's Bucket creates for notifications added with add_event_notification."""


def state_machine_log_group(scope: Construct, props: BurstComputeProps) -> logs.LogGroup:
    """The state machine's log group, named under ``/aws/vendedlogs/states/``.

    Step Functions guide, "Avoiding Amazon CloudWatch Logs resource policy size restrictions"
    (bp-cwl.html): "prefix your CloudWatch Logs log group names with /aws/vendedlogs/", or each
    logging state machine adds its log group to the account's CloudWatch Logs resource policy,
    which is limited to 5,120 characters. The name follows the console's ``<state machine name>-Logs``, or the
    construct's unique path when the state machine name is generated.
    """
    name = props.state_machine_name or cdk.Names.unique_resource_name(scope, max_length=200)
    return logs.LogGroup(
        scope,
        "StateMachineLogs",
        retention=props.log_retention,
        log_group_name=f"{VENDED_LOGS_PREFIX}{name}-Logs",
    )


VENDED_LOGS_PREFIX = "/aws/vendedlogs/states/"


def default_start_function(
    scope: Construct, props: BurstComputeProps, layer: lambda_.ILayerVersion
) -> lambda_.Function:
    """burstmap's start Lambda (``lambdas/start``)."""
    return _project_function(
        scope,
        "StartFunction",
        "start",
        props,
        layer,
        description="burstmap start: validates the job input and emits its items",
        memory_size=512,
        timeout=cdk.Duration.minutes(5),
    )


def default_combine_function(
    scope: Construct, props: BurstComputeProps, layer: lambda_.ILayerVersion
) -> lambda_.Function:
    """burstmap's exact-sum Lambda (``lambdas/combine``)."""
    return _project_function(
        scope,
        "CombineFunction",
        "combine",
        props,
        layer,
        description="burstmap combine: exact sum of the results and the failed-item report",
        memory_size=1024,
        timeout=cdk.Duration.minutes(15),
    )


def _project_function(
    scope: Construct,
    construct_id: str,
    directory: str,
    props: BurstComputeProps,
    layer: lambda_.ILayerVersion,
    *,
    description: str,
    memory_size: int,
    timeout: cdk.Duration,
) -> lambda_.Function:
    """One of this project's handlers (``lambdas/<directory>``): its asset plus the burstmap layer."""
    return lambda_.Function(
        scope,
        construct_id,
        runtime=props.runtime,
        architecture=props.architecture,
        code=lambda_.Code.from_asset(
            str(lambdas_dir() / directory), exclude=["__pycache__", "*.pyc", "tests"]
        ),
        handler="handler.handler",
        layers=[layer],
        memory_size=memory_size,
        timeout=timeout,
        description=description,
        log_group=logs.LogGroup(scope, f"{construct_id}Logs", retention=props.log_retention),
    )


def upload_rule(
    scope: Construct, input_prefix: str, bucket: s3.IBucket, state_machine: sfn.IStateMachine
) -> events.Rule:
    """EventBridge: an object created under the input prefix starts a job over the whole prefix."""
    return events.Rule(
        scope,
        "StartOnUpload",
        description="burstmap: start a job when an object lands under the input prefix",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={
                "bucket": {"name": [bucket.bucket_name]},
                "object": {"key": [{"prefix": f"{input_prefix}/"}]},
            },
        ),
        targets=[
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object(
                    {
                        "parameters": {},
                        "trigger": {
                            "bucket": events.EventField.from_path("$.detail.bucket.name"),
                            "key": events.EventField.from_path("$.detail.object.key"),
                        },
                    }
                ),
            )
        ],
    )
