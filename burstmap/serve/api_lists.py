"""What the Step Functions operations share: ARN checks worded as AWS words them, execution ARNs,
list items and their order, and nextToken pagination (AWS: "keep all other arguments unchanged")."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from burstmap.serve.backend import StateMachineSpec
from burstmap.serve.wire import ApiError

DEFAULT_PAGE_SIZE = 100


def check_arn(arn: str, resource_types: tuple[str, ...]) -> None:
    """InvalidArn, worded as AWS words it, unless ``arn`` is a Step Functions ARN of one of the types."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or not all(parts[3:6]):
        raise ApiError("InvalidArn", f"Invalid Arn: 'Invalid ARN prefix: {arn}'")
    if parts[5] not in resource_types:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}'")


def execution_arn(machine: StateMachineSpec, name: str) -> str:
    """``...:execution:<machine>:<name>``: what the engine's context object calls the execution too."""
    return machine.arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def express_arn(machine: StateMachineSpec, name: str) -> str:
    return machine.arn.replace(":stateMachine:", ":express:", 1) + f":{name}:{uuid.uuid4()}"


def map_run_machine_arn(map_run_arn: str) -> str:
    """``...:mapRun:<machine>/<label>:<id>`` -> ``...:stateMachine:<machine>/<label>``."""
    prefix, _, _ = map_run_arn.rpartition(":")
    return prefix.replace(":mapRun:", ":stateMachine:", 1)


def list_item(current: dict[str, Any]) -> dict[str, Any]:
    return {
        "executionArn": current["execution_arn"],
        "stateMachineArn": current["state_machine_arn"],
        "name": current["name"],
        "status": current["status"],
        "startDate": current["start_date"],
        "stopDate": current["stop_date"],
        "redriveCount": current["redrive_count"],
        "redriveDate": current["redrive_date"],
    }


def list_order(current: dict[str, Any]) -> datetime:
    """Running executions by their start (or redrive) date, the others by their stop date."""
    if current["status"] == "RUNNING":
        return current["redrive_date"] or current["start_date"]
    return current["stop_date"] or current["start_date"]


def without_data(event: dict[str, Any]) -> dict[str, Any]:
    """A history event without its input and output (GetExecutionHistory includeExecutionData false)."""
    stripped = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("input", "output")}
        stripped[key] = value
    return stripped


def request_key(request: dict[str, Any]) -> str:
    """The arguments a nextToken is tied to (AWS: "keep all other arguments unchanged")."""
    kept = {k: v for k, v in request.items() if k not in ("nextToken", "maxResults")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def one_page(
    items: list[Any], request: dict[str, Any], op: str, key: str
) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` (maxResults, 0 = the default 100) and the nextToken for the rest."""
    return page_of(iter(items), request, op, key)


def page_of(
    items: Iterator[Any], request: dict[str, Any], op: str, key: str
) -> tuple[list[Any], dict[str, str]]:
    """One page of the items an iterator yields, taking no more of them than the page needs."""
    size = request.get("maxResults") or DEFAULT_PAGE_SIZE
    start = 0
    token = request.get("nextToken")
    if token is not None:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if decoded["op"] != op or decoded["key"] != key:
                raise ValueError("the token belongs to other arguments")
            start = int(decoded["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError("InvalidToken", f"Invalid Token: '{token}'") from exc
    page = list(islice(items, start, start + size + 1))
    if len(page) <= size:
        return page, {}
    following = json.dumps({"op": op, "key": key, "offset": start + size}).encode()
    return page[:size], {"nextToken": base64.urlsafe_b64encode(following).decode()}
