"""A small app to serve in the API tests: state machines over Python handlers, and client helpers.

The machines cover what the operations must answer for: a Lambda task (succeeds or fails on demand), a
Wait (to catch an execution RUNNING, and to stop it), a Distributed Map with a ResultWriter (map runs),
an EXPRESS machine (StartSyncExecution) and one the engine refuses (``not supported locally``). The
handlers are Python callables, so they run in the server's process and the tests start in seconds.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from burstmap.local.services.lambda_runtime import FunctionSpec
from burstmap.serve.backend import StateMachineSpec
from burstmap.serve.endpoint import LocalEndpoint
from burstmap.serve.machines import StackOutput, StackSpec, stack_id

REGION = "us-east-1"
ACCOUNT = "111111111111"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ServeTestRole"
RESULTS_BUCKET = "serve-test-results"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class HandlerFailed(Exception):
    """What ``compute`` raises for an item asked to fail (the ASL error name the tests match)."""


def compute(event: dict[str, Any], context: Any) -> Any:
    if event.get("fail"):
        raise HandlerFailed(f"asked to fail: {event['value']}")
    return {"value": event["value"] * 2}


def machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def _machine(name: str, definition: dict[str, Any], kind: str = "STANDARD") -> StateMachineSpec:
    return StateMachineSpec(machine_arn(name), name, definition, kind, ROLE_ARN, CREATED, stack="ServeTest")


TASK = {
    "Type": "Task",
    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "compute", "Payload.$": "$"},
    "OutputPath": "$.Payload",
}
DOUBLE = _machine("Double", {"StartAt": "Double", "States": {"Double": {**TASK, "End": True}}})
WAITER = _machine(
    "Waiter",
    {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "SecondsPath": "$.seconds", "End": True}}},
)
MAPPER = _machine(
    "Mapper",
    {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "fail.$": "$.fail"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Double",
                    "States": {"Double": {**TASK, "End": True}},
                },
                "MaxConcurrency": 4,
                "ToleratedFailureCount": 1,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": RESULTS_BUCKET, "Prefix": "results"},
                },
                "End": True,
            }
        },
    },
)
EXPRESS = _machine(
    "Express", {"StartAt": "Double", "States": {"Double": {**TASK, "End": True}}}, kind="EXPRESS"
)
UNSUPPORTED = _machine(
    "Unsupported",
    {
        "StartAt": "Poll",
        "States": {"Poll": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}},
    },
)
MACHINES = [DOUBLE, WAITER, MAPPER, EXPRESS, UNSUPPORTED]
STACK = StackSpec(
    name="ServeTest",
    stack_id=stack_id("ServeTest"),
    creation_time=CREATED,
    description="the served test app",
    outputs=[
        StackOutput("StateMachineArn", DOUBLE.arn, "start me"),
        StackOutput("BucketName", RESULTS_BUCKET, export_name="ServeTestBucket"),
    ],
)


def served(**options: Any) -> LocalEndpoint:
    return LocalEndpoint(
        MACHINES,
        [STACK],
        [FunctionSpec(name="compute", handler=compute)],
        buckets=[RESULTS_BUCKET],
        port=0,
        **options,
    )


def client(service: str, url: str, **config: Any) -> Any:
    """A client as a user makes one: the endpoint URL, any credentials, standard retries."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 2}, **config),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
