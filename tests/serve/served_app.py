"""A small app to serve in the API tests: state machines over Python handlers, and client helpers.

The machines cover what the operations must answer for: a Lambda task (succeeds or fails on demand), a
Wait (to catch an execution RUNNING, and to stop it), a Distributed Map with a ResultWriter (map runs,
their children, stops and redrives), an EXPRESS machine (StartSyncExecution), one the engine refuses
(``not supported locally``) and one whose redrive it refuses (a failed Parallel). The handlers are Python
callables, so they run in the server's process (``CONTROLS`` steers them) and the tests start in seconds;
the compute's timeout is 60 s, since tests hold it while they look.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
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


class Controls:
    """What the tests steer ``compute`` with (it runs in the server's process): values that fail until
    they are repaired, a gate that holds values back, and how often each value was computed."""

    def __init__(self) -> None:
        self.broken: set[Any] = set()
        self.held: set[Any] = set()
        self.gate = threading.Event()
        self.calls: Counter[Any] = Counter()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.broken.clear()
            self.held.clear()
            self.calls.clear()
        self.gate.set()

    def called(self, value: Any) -> None:
        with self._lock:
            self.calls[value] += 1


CONTROLS = Controls()


def compute(event: dict[str, Any], context: Any) -> Any:
    value = event["value"]
    CONTROLS.called(value)
    if value in CONTROLS.held:
        CONTROLS.gate.wait(30)
    if event.get("fail") or value in CONTROLS.broken:
        raise HandlerFailed(f"asked to fail: {value}")
    return {"value": value * 2}


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
BRANCHES = _machine(
    "Branches",
    {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Broken", "States": {"Broken": {"Type": "Fail", "Error": "Broken"}}}
                ],
                "End": True,
            }
        },
    },
)
NESTED = _machine(
    "Nested",
    {
        "StartAt": "Groups",
        "States": {
            "Groups": {
                "Type": "Map",
                "ItemsPath": "$.groups",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Each",
                    "States": {
                        "Each": {
                            "Type": "Map",
                            "ItemSelector": {"value.$": "$$.Map.Item.Value"},
                            "ItemProcessor": {
                                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                "StartAt": "Double",
                                "States": {"Double": {**TASK, "OutputPath": "$.Payload.value", "End": True}},
                            },
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    },
)
MACHINES = [DOUBLE, WAITER, MAPPER, EXPRESS, UNSUPPORTED, BRANCHES, NESTED]
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
        [FunctionSpec(name="compute", handler=compute, timeout_seconds=60)],
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
