"""A map run's child executions: ``ListExecutions --map-run-arn`` and ``DescribeExecution`` of a child.

They are read from the map run's child records (the engine's ChildLedger): every child's status and
dates, the unsuccessful ones in detail. A succeeded child's input and output are not kept (a million-item
job would hold them all); DescribeExecution says so the way AWS marks data it leaves out,
``inputDetails``/``outputDetails`` ``{"included": false}``, and the ResultWriter's files hold them. AWS
records no EXPRESS executions, so a map run of EXPRESS children lists none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from burstmap.local.dmap.child import MapRunIdentity
from burstmap.local.dmap.child_ledger import ChildView
from burstmap.serve.backend import MapRunSnapshot
from burstmap.serve.store import ExecutionRecord, ExecutionStore

REDRIVE_BY_PARENT = (
    "not supported locally: redrive a child execution through its parent "
    "(RedriveExecution of {parent}), which reruns the map run's unsuccessful children"
)


def identity_of(run: MapRunSnapshot) -> MapRunIdentity:
    """The map run's identity from its ARN
    ``arn:aws:states:<region>:<account>:mapRun:<machine>/<label>:<id>``."""
    prefix, _, map_run_id = run.map_run_arn.rpartition(":")
    parts = prefix.split(":")
    machine, _, label = parts[6].partition("/")
    return MapRunIdentity(
        parts[3], parts[4], machine, label, map_run_id, run.execution_type, run.redrive_count
    )


def find_child(
    store: ExecutionStore, execution_arn: str
) -> tuple[ExecutionRecord, MapRunSnapshot, ChildView] | None:
    """The child execution an ARN (``...:execution:<machine>/<label>:<name>``) names, if a map run has it."""
    parts = execution_arn.split(":")
    if len(parts) != 8 or "/" not in parts[6]:
        return None
    child_machine, name = parts[6], parts[7]
    for record in store.all():
        for run in record.map_run_snapshots():
            if run.children is None or run.execution_type == "EXPRESS":
                continue
            identity = identity_of(run)
            if identity.child_state_machine_name != child_machine:
                continue
            sequence = identity.child_sequence(name)
            view = run.children.view(sequence) if sequence is not None else None
            if view is not None and view.status != "PENDING":
                return record, run, view
    return None


def describe_child(record: ExecutionRecord, run: MapRunSnapshot, view: ChildView) -> dict[str, Any]:
    """DescribeExecution of a child execution."""
    identity = identity_of(run)
    described: dict[str, Any] = {
        **_list_item(identity, run, view),
        "mapRunArn": run.map_run_arn,
        "inputDetails": {"included": view.detail is not None},
        "redriveStatus": "NOT_REDRIVABLE",
        "redriveStatusReason": (
            f"Execution is {view.status} and cannot be redriven"
            if view.status in ("RUNNING", "SUCCEEDED")
            else REDRIVE_BY_PARENT.format(parent=record.execution_arn)
        ),
    }
    if view.detail is not None:
        described.update(input=view.detail.input_text, error=view.detail.error, cause=view.detail.cause)
        described["redriveCount"] = view.detail.redrive_count
    if view.status == "SUCCEEDED":
        described["outputDetails"] = {"included": False}
    return described


def list_children(run: MapRunSnapshot, status: str | None) -> Iterator[dict[str, Any]]:
    """ListExecutions --map-run-arn: the children that have started, the last started first."""
    if run.children is None or run.execution_type == "EXPRESS":
        return
    identity = identity_of(run)
    if status == "PENDING_REDRIVE":
        if run.status == "RUNNING":
            return
        for view in run.children.newest_first():
            if view.status in {"FAILED", "TIMED_OUT", "ABORTED"}:
                yield _list_item(identity, run, view)
        return
    for view in run.children.newest_first(status):
        yield _list_item(identity, run, view)


def _list_item(identity: MapRunIdentity, run: MapRunSnapshot, view: ChildView) -> dict[str, Any]:
    name = identity.child_name(view.sequence)
    return {
        "executionArn": identity.child_execution_arn(name),
        "stateMachineArn": identity.child_state_machine_arn,
        "name": name,
        "status": view.status,
        "startDate": _date(view.start) or run.start_date,
        "stopDate": _date(view.stop),
        "mapRunArn": run.map_run_arn,
        "redriveCount": view.detail.redrive_count if view.detail is not None else 0,
    }


def _date(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
