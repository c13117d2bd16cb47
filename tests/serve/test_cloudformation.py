"""CloudFormation DescribeStacks on the served endpoint: botocore's query client parses the XML."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from served_app import DOUBLE, RESULTS_BUCKET, STACK, client

from burstmap import remote
from burstmap.serve.endpoint import LocalEndpoint


@pytest.fixture(scope="module")
def cloudformation(endpoint: LocalEndpoint) -> Any:
    return client("cloudformation", endpoint.url)


def test_describe_stacks_returns_the_stack_with_its_outputs(cloudformation: Any) -> None:
    (stack,) = cloudformation.describe_stacks(StackName="ServeTest")["Stacks"]
    assert (stack["StackName"], stack["StackId"], stack["StackStatus"]) == (
        "ServeTest",
        "arn:aws:cloudformation:us-east-1:111111111111:stack/ServeTest/local",
        "CREATE_COMPLETE",
    )
    assert stack["CreationTime"] == STACK.creation_time
    assert stack["Description"] == "the served test app"
    assert stack["Outputs"] == [
        {"OutputKey": "StateMachineArn", "OutputValue": DOUBLE.arn, "Description": "start me"},
        {"OutputKey": "BucketName", "OutputValue": RESULTS_BUCKET, "ExportName": "ServeTestBucket"},
    ]


def test_a_stack_is_found_by_its_id_and_all_are_listed_without_a_name(cloudformation: Any) -> None:
    by_id = cloudformation.describe_stacks(StackName=STACK.stack_id)["Stacks"]
    assert [s["StackName"] for s in by_id] == ["ServeTest"]
    assert [s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]] == ["ServeTest"]


def test_an_unknown_stack_is_the_validation_error_aws_returns(cloudformation: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cloudformation.describe_stacks(StackName="Nope")
    error = raised.value.response["Error"]
    assert (error["Code"], error["Message"], error["Type"]) == (
        "ValidationError",
        "Stack with id Nope does not exist",
        "Sender",
    )
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_other_actions_are_refused_by_name(cloudformation: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cloudformation.list_stacks()
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidAction"
    assert error["Message"].startswith("not supported locally: burstmap serve answers DescribeStacks")


def test_burstmap_resolves_a_stack_through_the_endpoint(cloudformation: Any) -> None:
    """What `burstmap run --stack ServeTest` does first."""
    resolved = remote.BurstmapStack.from_stack("ServeTest", cloudformation=cloudformation)
    assert (resolved.state_machine_arn, resolved.bucket_name) == (DOUBLE.arn, RESULTS_BUCKET)
    with pytest.raises(remote.StackNotFound, match="stack 'Nope' not found"):
        remote.BurstmapStack.from_stack("Nope", cloudformation=cloudformation)
