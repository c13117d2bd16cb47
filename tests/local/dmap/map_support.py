"""What the distributed Map tests share: a child context, Services without Lambda, a distributed Map
state, a run of it, an S3 reader block, and children that fail on chosen items."""

from __future__ import annotations

import json
from typing import Any

from burstmap.local.core.context import Services
from burstmap.local.dmap.map_run import run_distributed_map
from burstmap.local.dmap.settings import validate_distributed_map

BUCKET = "bucket-name"
CONTEXT = {
    "Execution": {"Id": "arn:aws:states:us-east-1:111111111111:execution:sm:exec-1", "Name": "exec-1"},
    "StateMachine": {"Id": "arn:aws:states:us-east-1:111111111111:stateMachine:sm", "Name": "sm"},
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class ChildFailed(Exception):
    """What run_child raises for a failed child: an ASL error name and cause (like StatesError)."""

    def __init__(self, error: str, cause: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def services(s3_client: Any = None, max_workers: int = 2) -> Services:
    return Services(runtime=None, s3=s3_client, max_workers=max_workers)


def distributed(**fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "End": True,
        **fields,
    }


def echo(child_input: Any, child_context: dict[str, Any]) -> Any:
    return child_input


def run(state: dict[str, Any], data: Any, child=echo, svc: Services | None = None, **kwargs: Any) -> Any:
    validate_distributed_map("MapState", state)
    return run_distributed_map("MapState", state, data, CONTEXT, svc or services(), child, **kwargs)


def reader(key: str, input_type: str, **config: Any) -> dict[str, Any]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": input_type, **config},
        "Parameters": {"Bucket.$": "$.Bucket", "Key": key},
    }


def read_json(s3_client: Any, key: str) -> Any:
    return json.loads(s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def failing_on(*bad: int):
    def child(child_input: Any, _: dict[str, Any]) -> Any:
        values = (
            child_input["Items"]
            if isinstance(child_input, dict) and "Items" in child_input
            else [child_input]
        )
        if any(value in bad for value in values):
            raise ChildFailed("Boom", f"item {values}")
        return child_input

    return child


WRITER = {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "jobs"}}
