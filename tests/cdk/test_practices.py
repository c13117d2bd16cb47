"""AWS practices BurstCompute follows at synth: a vended-logs log group name, a warning when compute's
reserved concurrency cannot serve max_concurrency, EventBridge notifications for start_on_upload."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as notifications
from aws_cdk import aws_sns as sns
from cdk_support import fast_app, inline_function, logical_id, template_of

from burstmap.cdk.construct import RESERVED_CONCURRENCY_WARNING, BurstCompute
from burstmap.cdk.props import BurstComputeValidationError


def _log_group_name(stack: cdk.Stack, job: BurstCompute) -> Any:
    template = template_of(stack)
    return template["Resources"][logical_id(stack, job.log_group)]["Properties"]["LogGroupName"]


def test_the_state_machine_log_group_is_under_vendedlogs_states() -> None:
    """Guide, "Avoiding Amazon CloudWatch Logs resource policy size restrictions"
    (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html): "prefix your CloudWatch Logs
    log group names with /aws/vendedlogs/" so logging state machines do not exhaust the account's
    5,120-character CloudWatch Logs resource policy. Unique per construct path, or the
    console's <name>-Logs with a state machine name."""
    app = fast_app()
    jobs = []
    for stack_name, props in (("One", {}), ("Two", {}), ("Named", {"state_machine_name": "burst"})):
        stack = cdk.Stack(app, stack_name)
        jobs.append((stack, BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"), **props)))
    one, two, named = (_log_group_name(stack, job) for stack, job in jobs)
    assert all(name.startswith("/aws/vendedlogs/states/") and name.endswith("-Logs") for name in (one, two))
    assert one != two
    assert named == "/aws/vendedlogs/states/burst-Logs"


def _warnings(stack: cdk.Stack) -> list[str]:
    found = assertions.Annotations.from_stack(stack).find_warning("*", assertions.Match.any_value())
    return [str(message.entry.data) for message in found]


@pytest.mark.parametrize(("reserved", "max_concurrency", "warned"), [(100, 900, True), (50, 50, False)])
def test_reserved_concurrency_below_max_concurrency_is_a_synth_warning(
    reserved: int, max_concurrency: int, warned: bool
) -> None:
    """A reserved concurrency under what the Map runs at once shows on AWS only as throttling: the
    synth output says so, under an id a user can acknowledge."""
    stack = cdk.Stack(fast_app(), "Reserved")
    BurstCompute(
        stack,
        "Job",
        compute=inline_function(stack, "Compute"),
        compute_reserved_concurrency=reserved,
        max_concurrency=max_concurrency,
    )
    warnings = [w for w in _warnings(stack) if RESERVED_CONCURRENCY_WARNING in w]
    assert bool(warnings) == warned
    if warned:
        (warning,) = warnings
        assert "compute_reserved_concurrency (100) is below max_concurrency (900)" in warning
        assert "Set max_concurrency=100" in warning


def test_start_on_upload_turns_on_event_bridge_for_a_bucket_defined_in_the_app() -> None:
    """The upload rule matches S3's "Object Created" events, which S3 sends to EventBridge only when
    the bucket's EventBridge notifications are on."""
    stack = cdk.Stack(fast_app(), "Given")
    bucket = s3.Bucket(stack, "Data", versioned=True)
    BurstCompute(
        stack,
        "Job",
        compute=inline_function(stack, "Compute"),
        bucket=bucket,
        input_prefix="in",
        start_on_upload=True,
    )
    properties = template_of(stack)["Resources"][logical_id(stack, bucket)]["Properties"]
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}  # the rest untouched


def test_start_on_upload_keeps_a_buckets_other_notifications() -> None:
    """A bucket with notifications added through aws-cdk-lib (a custom resource that writes the whole
    configuration) gets EventBridge through that same resource, so neither undoes the other."""
    stack = cdk.Stack(fast_app(), "Notified")
    bucket = s3.Bucket(stack, "Data")
    bucket.add_event_notification(
        s3.EventType.OBJECT_REMOVED, notifications.SnsDestination(sns.Topic(stack, "T"))
    )
    BurstCompute(
        stack,
        "Job",
        compute=inline_function(stack, "Compute"),
        bucket=bucket,
        input_prefix="in",
        start_on_upload=True,
    )
    resources = template_of(stack)["Resources"]
    (config,) = [
        r["Properties"]["NotificationConfiguration"]
        for r in resources.values()
        if r["Type"] == "Custom::S3BucketNotifications"
    ]
    assert config["EventBridgeConfiguration"] == {}
    assert config["TopicConfigurations"]
    assert "NotificationConfiguration" not in resources[logical_id(stack, bucket)].get("Properties", {})


def test_start_on_upload_refuses_an_imported_bucket_with_what_to_do() -> None:
    stack = cdk.Stack(fast_app(), "Imported")
    bucket = s3.Bucket.from_bucket_name(stack, "Data", "someone-elses-bucket")
    with pytest.raises(BurstComputeValidationError, match="not for an imported one: define the bucket here"):
        BurstCompute(
            stack,
            "Job",
            compute=inline_function(stack, "Compute"),
            bucket=bucket,
            input_prefix="in",
            start_on_upload=True,
        )
