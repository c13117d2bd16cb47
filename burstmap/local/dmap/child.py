"""A map run's child workflow executions: their input (a batch), names and ARNs, context object,
how each ended, and the record AWS keeps of it (what ResultWriter writes and the state returns).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from burstmap.local.core.context import iso_timestamp
from burstmap.local.core.json_text import to_json
from burstmap.local.core.limits import LOCAL_ACCOUNT, LOCAL_REGION

_UNPARSED: Any = object()


class Batch:
    """One child execution's work: its input and which items it carries.

    A batch cut from the item reader's text has `json_text` (the input's compact JSON) and parses
    it only when something asks for `child_input`."""

    __slots__ = ("sequence", "first_index", "item_count", "_child_input", "json_text")

    def __init__(
        self,
        sequence: int,
        first_index: int,
        item_count: int,
        child_input: Any = _UNPARSED,
        json_text: str | None = None,
    ) -> None:
        self.sequence = sequence
        self.first_index = first_index
        self.item_count = item_count
        self._child_input = child_input
        self.json_text = json_text

    @property
    def child_input(self) -> Any:
        if self._child_input is _UNPARSED:
            self._child_input = json.loads(self.json_text or "null")
        return self._child_input

    def input_json(self) -> str:
        """The child input as compact JSON (what records and payloads carry)."""
        return self.json_text if self.json_text is not None else to_json(self._child_input)


@dataclass
class ChildOutcome:
    """How one child execution ended: its output, or the ASL error it failed with."""

    batch: Batch
    identity: MapRunIdentity
    start: datetime
    stop: datetime
    output: Any = None
    failed: bool = False
    error: str | None = None
    cause: str | None = None
    aborted: bool = False
    """The map run was aborted (StopExecution) while this child ran: it ended ABORTED."""
    resume: Any = None
    """Where a failed child stopped (a child_ledger.ResumeAt), kept for a redrive."""
    redrive_count: int = 0

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.aborted

    @cached_property
    def name(self) -> str:
        """The child's name, made when a record needs it (a hash per child otherwise wasted)."""
        return self.identity.child_name(self.batch.sequence)

    @cached_property
    def execution_arn(self) -> str:
        return self.identity.child_execution_arn(self.name)


_NODE_BITS = 48
_SEQUENCE_BITS = 40


@dataclass(frozen=True)
class MapRunIdentity:
    """ARNs of a map run and of its child executions, shaped like AWS's."""

    region: str
    account: str
    state_machine_name: str
    label: str
    map_run_id: str
    execution_type: str
    redrive_count: int = 0
    """How often the map run was redriven: a redriven EXPRESS child is a new execution, named anew."""

    @property
    def map_run_arn(self) -> str:
        return (
            f"arn:aws:states:{self.region}:{self.account}:mapRun:"
            f"{self.state_machine_name}/{self.label}:{self.map_run_id}"
        )

    @property
    def child_state_machine_name(self) -> str:
        return f"{self.state_machine_name}/{self.label}"

    @property
    def child_state_machine_arn(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.child_state_machine_name}"

    @cached_property
    def _name_base(self) -> int:
        return uuid.UUID(self.map_run_id).int >> _NODE_BITS << _NODE_BITS

    def child_name(self, sequence: int) -> str:
        """A UUID per child (AWS names children with UUIDs too): the map run's id with its last 48 bits
        (the UUID's node field) holding the child's sequence and, for EXPRESS children, the redrive
        that started it; so the name leads back to the map run and the child (``child_sequence``)."""
        generation = self.redrive_count if self.execution_type == "EXPRESS" else 0
        return str(uuid.UUID(int=self._name_base | generation << _SEQUENCE_BITS | sequence))

    def child_sequence(self, name: str) -> int | None:
        """The sequence of the child ``name`` names, or None when it is not one of this map run's."""
        try:
            value = uuid.UUID(name).int
        except ValueError:
            return None
        if value >> _NODE_BITS << _NODE_BITS != self._name_base:
            return None
        return value & ((1 << _SEQUENCE_BITS) - 1)

    def child_execution_arn(self, name: str) -> str:
        kind = "express" if self.execution_type == "EXPRESS" else "execution"
        return f"arn:aws:states:{self.region}:{self.account}:{kind}:{self.child_state_machine_name}:{name}"


def map_run_identity(state_name: str, state: dict[str, Any], context: dict[str, Any]) -> MapRunIdentity:
    """A new map run's ARNs, from the parent execution's context object and the state's Label."""
    machine = context.get("StateMachine") or {}
    name = machine.get("Name") or "StateMachine"
    arn = machine.get("Id") or ""
    parts = arn.split(":")
    region, account = (
        (parts[3], parts[4]) if len(parts) > 5 and parts[0] == "arn" else (LOCAL_REGION, LOCAL_ACCOUNT)
    )
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    execution_type = processor.get("ProcessorConfig", {}).get("ExecutionType", "STANDARD")
    return MapRunIdentity(
        region, account, name, state.get("Label") or state_name, str(uuid.uuid4()), execution_type
    )


def succeeded_record(outcome: ChildOutcome) -> dict[str, Any]:
    """A SUCCEEDED child as ResultWriter writes it (Transformation NONE)."""
    identity = outcome.identity
    return {
        "ExecutionArn": outcome.execution_arn,
        "Input": outcome.batch.input_json(),
        "InputDetails": {"Included": True},
        "Name": outcome.name,
        "Output": to_json(outcome.output),
        "OutputDetails": {"Included": True},
        "RedriveCount": outcome.redrive_count,
        "RedriveStatus": "NOT_REDRIVABLE",
        "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
        "StartDate": iso_timestamp(outcome.start),
        "StateMachineArn": identity.child_state_machine_arn,
        "Status": "SUCCEEDED",
        "StopDate": iso_timestamp(outcome.stop),
    }


def failed_record(outcome: ChildOutcome) -> dict[str, Any]:
    """A FAILED (or ABORTED) child as ResultWriter writes it, and as a tolerated failure appears in the
    output."""
    identity = outcome.identity
    record: dict[str, Any] = {}
    if outcome.cause is not None:
        record["Cause"] = outcome.cause
    if outcome.error is not None:
        record["Error"] = outcome.error
    record.update(
        {
            "ExecutionArn": outcome.execution_arn,
            "Input": outcome.batch.input_json(),
            "InputDetails": {"Included": True},
            "Name": outcome.name,
            "RedriveCount": outcome.redrive_count,
            "RedriveStatus": "REDRIVABLE_BY_MAP_RUN"
            if identity.execution_type == "EXPRESS"
            else "REDRIVABLE",
            "StartDate": iso_timestamp(outcome.start),
            "StateMachineArn": identity.child_state_machine_arn,
            "Status": "ABORTED" if outcome.aborted else "FAILED",
            "StopDate": iso_timestamp(outcome.stop),
        }
    )
    return record


def pending_record(batch: Batch) -> dict[str, Any]:
    """A child never started because the map run failed."""
    return {"Input": batch.input_json(), "InputDetails": {"Included": True}, "Status": "PENDING"}


def child_context(outcome: ChildOutcome, role_arn: str | None) -> dict[str, Any]:
    """The context object a child execution starts with (its own Execution and StateMachine)."""
    identity = outcome.identity
    context: dict[str, Any] = {
        "Execution": {
            "Id": outcome.execution_arn,
            "Name": outcome.name,
            "Input": outcome.batch.child_input,
            "StartTime": iso_timestamp(outcome.start),
            "RedriveCount": outcome.redrive_count,
        },
        "StateMachine": {
            "Id": identity.child_state_machine_arn,
            "Name": identity.child_state_machine_name,
        },
    }
    if role_arn is not None:
        context["Execution"]["RoleArn"] = role_arn
    return context
