"""A burstmap-shaped state machine behind ``burstmap serve`` (in process), for the tests of jobs on AWS.

What moto cannot answer (ListMapRuns, DescribeMapRun, RedriveExecution, executions that actually run)
a served engine answers as AWS does. The machine: an optional Wait (a job caught before its map), then a
Distributed Map over ``items`` with burstmap's ItemSelector and a ResultWriter. Its compute (a Python
callable, run in this process) fails on the items the job's ``parameters["fail"]`` lists until
``CONTROLS.repaired`` is set, and holds the items ``parameters["hold"]`` lists until ``CONTROLS.gate``
is set.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from burstmap.client.aws import Clients
from burstmap.local.services.lambda_runtime import FunctionSpec
from burstmap.serve.backend import StateMachineSpec
from burstmap.serve.endpoint import LocalEndpoint

REGION = "us-east-1"
ACCOUNT = "111111111111"
BUCKET = "served-job-results"
MACHINE = "served-job"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"

DEFINITION: dict[str, Any] = {
    "StartAt": "Hold",
    "States": {
        "Hold": {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Compute"},
        "Compute": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {
                "item.$": "$$.Map.Item.Value",
                "index.$": "$$.Map.Item.Index",
                "parameters.$": "$.parameters",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Work",
                "States": {
                    "Work": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "compute", "Payload.$": "$"},
                        "OutputPath": "$.Payload",
                        "End": True,
                    }
                },
            },
            "MaxConcurrency": 2,
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Prefix": "results"},
            },
            "End": True,
        },
    },
}


class Controls:
    def __init__(self) -> None:
        self.repaired = False
        self.gate = threading.Event()

    def reset(self) -> None:
        self.repaired = False
        self.gate.set()


CONTROLS = Controls()


def compute(event: dict[str, Any], context: Any) -> Any:
    item, parameters = event["item"], event["parameters"]
    if item in parameters.get("hold", []):
        CONTROLS.gate.wait(60)
    if item in parameters.get("fail", []) and not CONTROLS.repaired:
        raise ValueError(f"item {item} is odd")
    return item * 10


def job_input(items: list[int], *, wait_seconds: int = 0, **parameters: Any) -> dict[str, Any]:
    return {"items": items, "wait_seconds": wait_seconds, "parameters": parameters}


def served_endpoint() -> LocalEndpoint:
    machine = StateMachineSpec(
        MACHINE_ARN,
        MACHINE,
        DEFINITION,
        "STANDARD",
        f"arn:aws:iam::{ACCOUNT}:role/served-job",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    functions = [FunctionSpec(name="compute", handler=compute, timeout_seconds=60)]
    return LocalEndpoint([machine], functions=functions, buckets=[BUCKET], port=0)


def served_clients(url: str) -> Clients:
    """The clients a job on AWS uses, pointed at the endpoint (any credentials, standard retries)."""
    config = Config(retries={"mode": "standard", "max_attempts": 2})
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name=REGION, config=config)
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, config=config)
    return Clients(sfn=sfn, s3=s3, cloudformation=None)
