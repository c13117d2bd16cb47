"""Builders of ResultWriter output in AWS's layout, for the results and combine tests.

Layout per the AWS developer guide "ResultWriter (Map)": ``<prefix>/<map run id>/manifest.json`` and
``SUCCEEDED_n.json`` / ``FAILED_n.json`` / ``PENDING_n.json`` beside it; NONE records carry ``Input`` and
``Output`` as JSON text; COMPACT records are the outputs alone; failed children are always NONE records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

REGION = "us-east-1"
ACCOUNT = "111111111111"
MACHINE = "burstmap-test"
MAP_RUN_ID = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
MAP_RUN_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{MACHINE}/MapPayloadItems:{MAP_RUN_ID}"


def child_arn(number: int) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}/MapPayloadItems:child-{number}"


def _record(number: int, child_input: Any, status: str) -> dict[str, Any]:
    return {
        "ExecutionArn": child_arn(number),
        "Name": f"child-{number}",
        "Input": json.dumps(child_input),
        "InputDetails": {"Included": True},
        "StartDate": "2026-11-23T10:00:00.000Z",
        "StateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}/MapPayloadItems",
        "Status": status,
        "StopDate": "2026-11-23T10:00:01.000Z",
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
    }


def succeeded_record(
    number: int, index: int, item: Any, output: Any, parameters: Any = None
) -> dict[str, Any]:
    """A NONE record of a one-item child."""
    record = _record(number, {"item": item, "index": index, "parameters": parameters or {}}, "SUCCEEDED")
    record["Output"] = json.dumps(output)
    record["OutputDetails"] = {"Included": True}
    return record


def succeeded_batch_record(number: int, indices: list[int], items: list[Any], outputs: Any) -> dict[str, Any]:
    """A NONE record of a batch child: Input {"Items": [...], "BatchInput": {...}}, Output a list."""
    child_input = {
        "Items": [{"item": item, "index": index} for index, item in zip(indices, items, strict=True)],
        "BatchInput": {"parameters": {}},
    }
    record = _record(number, child_input, "SUCCEEDED")
    record["Output"] = json.dumps(outputs)
    record["OutputDetails"] = {"Included": True}
    return record


def failed_record(
    number: int, index: int, item: Any, error: str = "ValueError", status: str = "FAILED"
) -> dict:
    record = _record(number, {"item": item, "index": index, "parameters": {}}, status)
    record["Error"] = error
    record["Cause"] = json.dumps(
        {"errorMessage": f"item {item} failed", "errorType": error, "stackTrace": []}
    )
    return record


def failed_batch_record(
    number: int, indices: list[int], items: list[Any], error: str = "Sandbox.Timedout"
) -> dict:
    child_input = {
        "Items": [{"item": item, "index": index} for index, item in zip(indices, items, strict=True)],
        "BatchInput": {"parameters": {}},
    }
    record = _record(number, child_input, "TIMED_OUT")
    record["Error"] = error
    record["Cause"] = "Task timed out after 3.00 seconds"
    return record


def encode(records: Iterable[Any], output_type: str = "JSON") -> bytes:
    if output_type == "JSONL":
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    return json.dumps(list(records)).encode()


def write_map_run(
    s3: Any,
    bucket: str,
    files: dict[str, list[list[Any]]],
    *,
    prefix: str = "results",
    output_type: str = "JSON",
) -> str:
    """Upload the result files (a list of records per file, per status) and the manifest; returns its key."""
    directory = f"{prefix}/{MAP_RUN_ID}"
    extension = "jsonl" if output_type == "JSONL" else "json"
    result_files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, contents in files.items():
        for number, records in enumerate(contents):
            key = f"{directory}/{status}_{number}.{extension}"
            body = encode(records, output_type)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            result_files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": MAP_RUN_ARN, "ResultFiles": result_files}
    manifest_key = f"{directory}/manifest.json"
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
    return manifest_key
