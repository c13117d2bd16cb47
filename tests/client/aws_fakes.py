"""AWS-shaped fakes for the tests of jobs on AWS: moto for what it implements, botocore Stubber for the rest.

moto 5.2.5 keeps executions RUNNING forever, returns no `mapRuns` from ListMapRuns, an empty
DescribeMapRun and NotImplemented for RedriveExecution; those calls are stubbed with responses
shaped like AWS's (API reference of DescribeExecution, ListMapRuns, DescribeMapRun, RedriveExecution).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.stub import Stubber

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/burstmap-test"
MACHINE = "burstmap-demo"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"
EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:job-1"
MAP_RUN_ID = "ad3b3d8e-e9e8-3c30-9d4b-c6bf0ca8c0b9"
MAP_RUN_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{MACHINE}/ComputeOverPayload:{MAP_RUN_ID}"
BUCKET = "burstmap-results-test"
STARTED = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

#: The shape of burstmap's state machine (start -> choice -> distributed map -> combine).
DEFINITION: dict[str, Any] = {
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Source"},
        "Source": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.source", "StringEquals": "s3", "Next": "ComputeOverS3"}],
            "Default": "ComputeOverPayload",
        },
        "ComputeOverS3": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Compute",
                "States": {
                    "Compute": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
                },
            },
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Prefix": "results"},
            },
            "Next": "Combine",
        },
        "ComputeOverPayload": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Compute",
                "States": {
                    "Compute": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
                },
            },
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Prefix": "results"},
            },
            "Next": "Combine",
        },
        "Combine": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True},
    },
}


def stubbed_sfn() -> tuple[Any, Stubber]:
    """A Step Functions client whose every call is answered by a Stubber (activated)."""
    client = boto3.client("stepfunctions", region_name=REGION, config=Config(retries={"mode": "standard"}))
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def execution(
    status: str,
    *,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
    seconds: float = 10.0,
    arn: str = EXECUTION_ARN,
) -> dict[str, Any]:
    """A DescribeExecution response."""
    response: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": MACHINE_ARN,
        "name": arn.rsplit(":", 1)[-1],
        "status": status,
        "startDate": STARTED,
        "input": json.dumps({"size": 4}),
    }
    if status != "RUNNING":
        response["stopDate"] = STARTED + timedelta(seconds=seconds)
    if output is not None:
        response["output"] = json.dumps(output)
    if error is not None:
        response["error"] = error
    if cause is not None:
        response["cause"] = cause
    return response


def list_map_runs(arn: str = EXECUTION_ARN) -> dict[str, Any]:
    """A ListMapRuns response with one map run."""
    return {
        "mapRuns": [
            {
                "executionArn": arn,
                "mapRunArn": MAP_RUN_ARN,
                "stateMachineArn": MACHINE_ARN,
                "startDate": STARTED,
            }
        ]
    }


def describe_map_run(
    *,
    succeeded: int,
    failed: int = 0,
    running: int = 0,
    pending: int = 0,
    total: int,
    status: str = "RUNNING",
) -> dict[str, Any]:
    """A DescribeMapRun response; item and execution counts are equal (batch size 1)."""
    counts = {
        "pending": pending,
        "running": running,
        "succeeded": succeeded,
        "failed": failed,
        "timedOut": 0,
        "aborted": 0,
        "total": total,
        "resultsWritten": succeeded + failed,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    }
    return {
        "mapRunArn": MAP_RUN_ARN,
        "executionArn": EXECUTION_ARN,
        "status": status,
        "startDate": STARTED,
        "maxConcurrency": 900,
        "toleratedFailurePercentage": 0.0,
        "toleratedFailureCount": 0,
        "itemCounts": dict(counts),
        "executionCounts": dict(counts),
        "redriveCount": 0,
    }


def child_record(
    index: int, item: Any, *, output: Any = None, error: str | None = None, cause: str | None = None
):
    """One record of a ResultWriter SUCCEEDED_n / FAILED_n file."""
    record: dict[str, Any] = {
        "ExecutionArn": f"{MAP_RUN_ARN.replace(':mapRun:', ':execution:')}:{index}",
        "Input": json.dumps({"item": item, "index": index, "parameters": {}}),
        "InputDetails": {"Included": True},
        "Name": str(index),
        "StartDate": "2026-11-23T10:00:01.000Z",
        "StateMachineArn": MAP_RUN_ARN,
        "Status": "FAILED" if error else "SUCCEEDED",
        "StopDate": "2026-11-23T10:00:02.000Z",
        "RedriveCount": 0,
        "RedriveStatus": "REDRIVABLE" if error else "NOT_REDRIVABLE",
    }
    if error:
        record["Error"] = error
        record["Cause"] = cause
    else:
        record["Output"] = json.dumps(output)
        record["OutputDetails"] = {"Included": True}
    return record


def lambda_cause(message: str, error_type: str = "ValueError") -> str:
    """The cause AWS records for a Lambda handler exception."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": "r-1", "stackTrace": []}
    )


def put_results(s3: Any, *, succeeded: list[dict], failed: list[dict], bucket: str = BUCKET) -> str:
    """Write a manifest and its result files the way ResultWriter does; returns the manifest URI."""
    prefix = f"results/{MAP_RUN_ID}"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, records in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        if records:
            key = f"{prefix}/{status}_0.json"
            body = json.dumps(records).encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": MAP_RUN_ARN, "ResultFiles": files}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    return f"s3://{bucket}/{prefix}/manifest.json"


def finish_moto_execution(
    execution_arn: str, status: str, *, output: Any = None, error=None, cause=None
) -> None:
    """End a moto execution (moto leaves every execution RUNNING) as Step Functions would."""
    from moto.stepfunctions.models import stepfunctions_backends

    backend = stepfunctions_backends[ACCOUNT][REGION]
    found = backend.describe_execution(execution_arn)
    found.status = status
    found.stop_date = datetime.now(UTC)
    found.output = json.dumps(output) if output is not None else None
    found.error = error
    found.cause = cause


def describe_state_machine() -> dict[str, Any]:
    """A DescribeStateMachine response for DEFINITION."""
    return {
        "stateMachineArn": MACHINE_ARN,
        "name": MACHINE,
        "definition": json.dumps(DEFINITION),
        "roleArn": ROLE_ARN,
        "type": "STANDARD",
        "creationDate": STARTED,
    }


def stack_template(bucket_name: str | None = None) -> dict[str, Any]:
    """A CloudFormation template with burstmap's outputs (StateMachineArn, BucketName)."""
    bucket: dict[str, Any] = {"Type": "AWS::S3::Bucket"}
    if bucket_name is not None:
        bucket["Properties"] = {"BucketName": bucket_name}
    return {
        "Resources": {
            "Results": bucket,
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": ROLE_ARN, "DefinitionString": json.dumps(DEFINITION)},
            },
        },
        "Outputs": {
            "StateMachineArn": {"Value": {"Ref": "Machine"}},
            "BucketName": {"Value": {"Ref": "Results"}},
        },
    }
