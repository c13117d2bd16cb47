"""The Step Functions API (JSON 1.0, ``X-Amz-Target: AWSStepFunctions.<Operation>``) over a backend.

Each operation validates its request against botocore's model (``wire``), answers with AWS's error
codes and messages (``ExecutionDoesNotExist``, ``InvalidArn``, ...) and renders its response from the
model's output shape. Behaviour follows the API reference: idempotent StartExecution for the same name
and input while the execution runs, nextToken/maxResults pagination (default 100, at most 1000),
ListExecutions newest first, redrive only of an ended, unsuccessful execution within 14 days.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from burstmap.serve.api_lists import (
    check_arn,
    execution_arn,
    express_arn,
    list_item,
    list_order,
    map_run_machine_arn,
    one_page,
    page_of,
    request_key,
    without_data,
)
from burstmap.serve.backend import (
    ExecutionBackend,
    ExecutionOutcome,
    ExecutionRequest,
    NotSupportedLocally,
    StateMachineSpec,
)
from burstmap.serve.child_executions import describe_child, find_child, list_children
from burstmap.serve.store import ExecutionRecord, ExecutionStore, to_json_text
from burstmap.serve.wire import (
    JSON_CONTENT_TYPE,
    ApiError,
    Reply,
    json_error,
    operation,
    parse_json_request,
    render_json,
    service_model,
)

TARGET_PREFIX = "AWSStepFunctions."
REDRIVABLE_PERIOD = timedelta(days=14)
CLIENT_TOKEN_TTL_SECONDS = 15 * 60
STOP_WIND_DOWN_SECONDS = 10.0
"""How long RedriveExecution waits for a just-stopped execution's engine to report where it stopped."""
CLIENT_TOKENS_KEPT = 10
_NAME_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


class StepFunctionsApi:
    """Answers Step Functions requests for the served state machines."""

    def __init__(
        self, machines: Iterable[StateMachineSpec], backend: ExecutionBackend, store: ExecutionStore
    ) -> None:
        self.model = service_model("stepfunctions")
        self.machines = {machine.arn: machine for machine in machines}
        self.backend = backend
        self.store = store
        self._start_lock = threading.Lock()
        self._local = threading.local()
        self._redrive_tokens: dict[str, list[tuple[str, float, datetime]]] = {}
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ListStateMachines": self.list_state_machines,
            "DescribeStateMachine": self.describe_state_machine,
            "DescribeStateMachineForExecution": self.describe_state_machine_for_execution,
            "StartExecution": self.start_execution,
            "StartSyncExecution": self.start_sync_execution,
            "DescribeExecution": self.describe_execution,
            "ListExecutions": self.list_executions,
            "StopExecution": self.stop_execution,
            "GetExecutionHistory": self.get_execution_history,
            "ListMapRuns": self.list_map_runs,
            "DescribeMapRun": self.describe_map_run,
            "RedriveExecution": self.redrive_execution,
        }

    def handle(self, target: str, body: bytes) -> Reply:
        """One request (an error is a response too). Executions it starts begin in ``Reply.then``."""
        self._local.then = then = []
        try:
            if not target.startswith(TARGET_PREFIX):
                raise ApiError(
                    "UnknownOperationException",
                    f"not supported locally: burstmap serve answers Step Functions ({TARGET_PREFIX}*), S3 "
                    f"and CloudFormation DescribeStacks, not {target}",
                )
            op = operation(self.model, target[len(TARGET_PREFIX) :])
            handler = self._operations.get(op.name)
            if handler is None:
                raise ApiError(
                    "UnknownOperationException",
                    f"not supported locally: burstmap serve does not implement {op.name}; it serves the "
                    f"app's state machines and their executions ({', '.join(self._operations)})",
                )
            result = handler(parse_json_request(op, body))
            reply = Reply(200, {"Content-Type": JSON_CONTENT_TYPE}, render_json(op.output_shape, result))
            reply.then = then
            return reply
        except ApiError as error:
            for begin in then:  # nothing was answered about them; they still must run (or end)
                begin()
            return json_error(error)

    # ------------------------------------------------------------------------------ state machines

    def list_state_machines(self, request: dict[str, Any]) -> dict[str, Any]:
        items = [
            {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": m.creation_date}
            for m in sorted(self.machines.values(), key=lambda m: m.name)
        ]
        listed, token = one_page(items, request, "ListStateMachines", "")
        return {"stateMachines": listed, **token}

    def describe_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        machine = self._machine(request["stateMachineArn"])
        return {
            "stateMachineArn": machine.arn,
            "name": machine.name,
            "status": "ACTIVE",
            "definition": to_json_text(machine.definition),
            "roleArn": machine.role_arn,
            "type": machine.type,
            "creationDate": machine.creation_date,
        }

    def describe_state_machine_for_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        machine = self._machine_of(self._execution(request["executionArn"]))
        return {
            "stateMachineArn": machine.arn,
            "name": machine.name,
            "definition": to_json_text(machine.definition),
            "roleArn": machine.role_arn,
            "updateDate": machine.creation_date,
        }

    # ------------------------------------------------------------------------------ starting

    def start_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        machine = self._startable(request["stateMachineArn"])
        name, input_text, execution_input = self._name_and_input(request)
        if machine.type == "EXPRESS":  # not recorded by AWS: no Describe/List/History, names reusable
            record = self._run(
                machine, express_arn(machine, name), name, input_text, execution_input, request
            )
            return {"executionArn": record.execution_arn, "startDate": record.start_date}
        arn = execution_arn(machine, name)
        with self._start_lock:
            existing = self.store.get(arn)
            if existing is not None:
                current = existing.describe()
                if current["status"] == "RUNNING" and current["input_text"] == input_text:
                    return {"executionArn": arn, "startDate": current["start_date"]}
                raise ApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
            record = self._run(machine, arn, name, input_text, execution_input, request, store=True)
        return {"executionArn": record.execution_arn, "startDate": record.start_date}

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        machine = self._startable(request["stateMachineArn"])
        if machine.type != "EXPRESS":
            raise ApiError(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine: StartSyncExecution runs "
                f"EXPRESS state machines; {machine.arn} is {machine.type}",
            )
        name, input_text, execution_input = self._name_and_input(request)
        arn = express_arn(machine, name)
        record = self._run(machine, arn, name, input_text, execution_input, request, sync=True)
        record.wait()
        current = record.describe()
        response = {
            "executionArn": current["execution_arn"],
            "stateMachineArn": machine.arn,
            "name": name,
            "startDate": current["start_date"],
            "stopDate": current["stop_date"],
            "status": current["status"],
            "error": current["error"],
            "cause": current["cause"],
            "input": input_text,
            "inputDetails": {"included": True},
            "traceHeader": current["trace_header"],
        }
        if current["status"] == "SUCCEEDED":
            response.update(output=current["output_text"], outputDetails={"included": True})
        return response

    def _startable(self, arn: str) -> StateMachineSpec:
        machine = self._machine(arn)
        if machine.unsupported is not None:
            raise ApiError("ValidationException", f"not supported locally: {machine.unsupported}")
        return machine

    def _name_and_input(self, request: dict[str, Any]) -> tuple[str, str, Any]:
        name = request.get("name") or str(uuid.uuid4())
        if _NAME_FORBIDDEN.search(name):
            raise ApiError("InvalidName", f"Invalid Name: '{name}'")
        input_text = request.get("input")
        if input_text is None:
            input_text = "{}"
        if len(input_text.encode("utf-8")) > 262144:
            raise ApiError(
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must "
                "have length less than or equal to 262144 bytes (UTF-8); pass large item lists through S3",
            )
        try:
            execution_input = json.loads(input_text)
        except ValueError as exc:
            raise ApiError(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'"
            ) from exc
        return name, input_text, execution_input

    def _run(
        self,
        machine: StateMachineSpec,
        arn: str,
        name: str,
        input_text: str,
        execution_input: Any,
        request: dict[str, Any],
        *,
        store: bool = False,
        sync: bool = False,
    ) -> ExecutionRecord:
        """A new execution's record; its run begins once the response is sent (at once with ``sync``)."""
        start = datetime.now(UTC)
        record = ExecutionRecord(
            execution_arn=arn,
            state_machine_arn=machine.arn,
            name=name,
            input_text=input_text,
            start_date=start,
            machine_type=machine.type,
            trace_header=request.get("traceHeader"),
        )
        record.started(machine.role_arn)
        if store:
            self.store.add(record)
        run = ExecutionRequest(arn, name, machine, execution_input, start)
        begin = lambda: record.attach(self.backend.start(run, record))  # noqa: E731
        if sync:
            begin()
        else:
            self._local.then.append(begin)
        return record

    # ------------------------------------------------------------------------------ executions

    def describe_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["executionArn"]
        check_arn(arn, ("execution",))
        record = self.store.get(arn)
        if record is None:
            child = find_child(self.store, arn)
            if child is None:
                raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
            return describe_child(*child)
        current = record.describe()
        status, reason = self._redrive_status(current)
        response = {
            **list_item(current),
            "input": current["input_text"],
            "inputDetails": {"included": True},
            "error": current["error"],
            "cause": current["cause"],
            "traceHeader": current["trace_header"],
            "redriveStatus": status,
            "redriveStatusReason": reason,
        }
        response["redriveCount"] = current["redrive_count"]
        if current["status"] == "SUCCEEDED":
            response.update(output=current["output_text"], outputDetails={"included": True})
        if request.get("includedData") == "METADATA_ONLY":  # a poller that needs only the status
            for key in ("input", "inputDetails", "output", "outputDetails"):
                response.pop(key, None)
        return response

    def list_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        arn, map_run = request.get("stateMachineArn"), request.get("mapRunArn")
        if (arn is None) == (map_run is None):
            raise ApiError(
                "ValidationException",
                "1 validation error detected: give either a stateMachineArn or a mapRunArn, not both "
                "and not neither",
            )
        status_filter, redrive_filter = request.get("statusFilter"), request.get("redriveFilter")
        if map_run is not None:
            return self._list_children(map_run, request)
        machine = self._machine(arn)
        if machine.type == "EXPRESS":
            raise ApiError(
                "StateMachineTypeNotSupported",
                f"This operation is not supported by this type of state machine: {machine.arn} is EXPRESS",
            )
        if status_filter == "PENDING_REDRIVE":
            raise ApiError(
                "ValidationException", "The PENDING_REDRIVE statusFilter can only be used with a mapRunArn"
            )
        rows = [
            current
            for current in (record.describe() for record in self.store.all())
            if current["state_machine_arn"] == machine.arn
            and status_filter in (None, current["status"])
            and redrive_filter in (None, "REDRIVEN" if current["redrive_count"] else "NOT_REDRIVEN")
        ]
        rows.sort(key=list_order, reverse=True)
        listed, token = one_page(
            [list_item(row) for row in rows], request, "ListExecutions", request_key(request)
        )
        return {"executions": listed, **token}

    def _list_children(self, map_run_arn: str, request: dict[str, Any]) -> dict[str, Any]:
        check_arn(map_run_arn, ("mapRun",))
        found = self.store.find_map_run(map_run_arn)
        if found is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{map_run_arn}'")
        redrive_filter = request.get("redriveFilter")
        children = (
            child
            for child in list_children(found[1], request.get("statusFilter"))
            if redrive_filter in (None, "REDRIVEN" if child["redriveCount"] else "NOT_REDRIVEN")
        )
        listed, token = page_of(children, request, "ListExecutions", request_key(request))
        return {"executions": listed, **token}

    def stop_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(request["executionArn"])
        record.stop(request.get("error"), request.get("cause"), datetime.now(UTC))
        return {"stopDate": record.describe()["stop_date"]}

    def get_execution_history(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(request["executionArn"])
        record.settle_stop()
        events = record.history()
        if request.get("reverseOrder"):
            events.reverse()
        if request.get("includeExecutionData") is False:
            events = [without_data(event) for event in events]
        listed, token = one_page(events, request, "GetExecutionHistory", request_key(request))
        return {"events": listed, **token}

    # ------------------------------------------------------------------------------ map runs

    def list_map_runs(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["executionArn"]
        # The map runs this execution started (those of a Map nested in its children belong to them).
        runs = [run for run in self._execution(arn).map_run_snapshots() if run.execution_arn == arn]
        items = [
            {
                "executionArn": run.execution_arn,
                "mapRunArn": run.map_run_arn,
                "stateMachineArn": map_run_machine_arn(run.map_run_arn),
                "startDate": run.start_date,
                "stopDate": run.stop_date,
            }
            for run in sorted(runs, key=lambda run: run.start_date)
        ]
        listed, token = one_page(items, request, "ListMapRuns", request_key(request))
        return {"mapRuns": listed, **token}

    def describe_map_run(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["mapRunArn"]
        check_arn(arn, ("mapRun",))
        found = self.store.find_map_run(arn)
        if found is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        _, run = found
        return {
            "mapRunArn": run.map_run_arn,
            "executionArn": run.execution_arn,
            "status": run.status,
            "startDate": run.start_date,
            "stopDate": run.stop_date,
            "maxConcurrency": run.max_concurrency,
            "toleratedFailurePercentage": run.tolerated_failure_percentage,
            "toleratedFailureCount": run.tolerated_failure_count,
            "itemCounts": run.item_counts,
            "executionCounts": run.execution_counts,
            "redriveCount": run.redrive_count,
            "redriveDate": run.redrive_date,
        }

    # ------------------------------------------------------------------------------ redrive

    def redrive_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(request["executionArn"])
        token = request.get("clientToken")
        if token is not None:
            earlier = self._earlier_redrive(record.execution_arn, token)
            if earlier is not None:
                return {"redriveDate": earlier}
        current = record.describe()
        if current["status"] != "RUNNING" and not current["end_reported"]:
            record.wait(timeout=STOP_WIND_DOWN_SECONDS)  # a just-stopped engine reports where it stopped
            current = record.describe()
        status, reason = self._redrive_status(current)
        if status != "REDRIVABLE":
            raise ApiError("ExecutionNotRedrivable", reason or "Execution cannot be redriven")
        machine = self._machine_of(record)
        when = datetime.now(UTC)
        previous = ExecutionOutcome(
            status=current["status"],
            stop_date=current["stop_date"],
            output=None,
            error=current["error"],
            cause=current["cause"],
            map_runs=record.map_run_snapshots(),
            redrive_point=current["redrive_point"],
        )
        record.redriven(when)
        run = ExecutionRequest(
            record.execution_arn,
            record.name,
            machine,
            json.loads(current["input_text"]),
            current["start_date"],
            redrive_count=current["redrive_count"] + 1,
            next_event_id=record.next_event_id,
        )
        try:
            record.attach(self.backend.redrive(run, previous, record))
        except NotSupportedLocally as exc:  # the capability said yes; keep the record truthful anyway
            record.finished(previous)
            raise ApiError("ExecutionNotRedrivable", str(exc)) from exc
        if token is not None:
            self._remember_redrive(record.execution_arn, token, when)
        return {"redriveDate": when}

    def _redrive_status(self, current: dict[str, Any]) -> tuple[str, str | None]:
        status = current["status"]
        if status in ("RUNNING", "SUCCEEDED"):
            return "NOT_REDRIVABLE", f"Execution is {status} and cannot be redriven"
        if current["stop_date"] is not None and datetime.now(UTC) - current["stop_date"] > REDRIVABLE_PERIOD:
            return "NOT_REDRIVABLE", "Execution redrivable period exceeded"
        point = current["redrive_point"]
        if point is None and not current["end_reported"]:
            return "NOT_REDRIVABLE", "the stopped execution is still winding down: try again in a moment"
        if point is None:
            return "NOT_REDRIVABLE", (
                "not supported locally: no state of the execution was left unfinished (it failed before its "
                "first state, or was stopped as its last one ended)"
            )
        if point.get("unsupported"):
            return "NOT_REDRIVABLE", point["unsupported"]
        return "REDRIVABLE", None

    def _earlier_redrive(self, arn: str, token: str) -> datetime | None:
        now = time.monotonic()
        with self._start_lock:
            kept = [
                entry
                for entry in self._redrive_tokens.get(arn, [])
                if now - entry[1] < CLIENT_TOKEN_TTL_SECONDS
            ]
            self._redrive_tokens[arn] = kept
            return next((when for known, _, when in kept if known == token), None)

    def _remember_redrive(self, arn: str, token: str, when: datetime) -> None:
        with self._start_lock:
            kept = self._redrive_tokens.setdefault(arn, [])
            kept.append((token, time.monotonic(), when))
            del kept[:-CLIENT_TOKENS_KEPT]

    # ------------------------------------------------------------------------------ lookups

    def _machine(self, arn: str) -> StateMachineSpec:
        check_arn(arn, ("stateMachine",))
        machine = self.machines.get(arn)
        if machine is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
        return machine

    def _machine_of(self, record: ExecutionRecord) -> StateMachineSpec:
        """The machine an execution ran; a state directory may hold executions of a machine the app
        no longer has."""
        machine = self.machines.get(record.state_machine_arn)
        if machine is None:
            raise ApiError(
                "StateMachineDoesNotExist",
                f"State Machine Does Not Exist: '{record.state_machine_arn}' (the served app no longer "
                "has it)",
            )
        return machine

    def _execution(self, arn: str) -> ExecutionRecord:
        check_arn(arn, ("execution",))
        record = self.store.get(arn)
        if record is None:
            raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        return record
