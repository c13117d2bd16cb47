"""What a state directory keeps across a restart, in process (the subprocess test is test_command.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from served_app import CONTROLS, DOUBLE, MACHINES, MAPPER, RESULTS_BUCKET, STACK, client, compute

from burstmap.local import HistoryEvent
from burstmap.local.services.lambda_runtime import FunctionSpec
from burstmap.serve.backend import ExecutionOutcome
from burstmap.serve.endpoint import LocalEndpoint
from burstmap.serve.store import ExecutionRecord, ExecutionStore


def endpoint_over(state_dir: Path, machines: list[Any] = MACHINES) -> LocalEndpoint:
    return LocalEndpoint(
        machines,
        [STACK],
        [FunctionSpec(name="compute", handler=compute, timeout_seconds=60)],
        buckets=[RESULTS_BUCKET],
        port=0,
        state_dir=state_dir,
    )


def ended(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return described


def test_executions_events_map_runs_and_objects_survive_a_restart(tmp_path: Path) -> None:
    with endpoint_over(tmp_path) as first:
        sfn = client("stepfunctions", first.url)
        arn = sfn.start_execution(stateMachineArn=MAPPER.arn, input='{"items": [1, 2], "fail": false}')[
            "executionArn"
        ]
        before = ended(sfn, arn)
        runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
        described_run = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
        events = sfn.get_execution_history(executionArn=arn)["events"]
    with endpoint_over(tmp_path) as second:
        sfn = client("stepfunctions", second.url)
        assert sfn.describe_execution(executionArn=arn) | {"ResponseMetadata": None} == before | {
            "ResponseMetadata": None
        }
        assert sfn.list_map_runs(executionArn=arn)["mapRuns"] == runs
        again = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
        assert again | {"ResponseMetadata": None} == described_run | {"ResponseMetadata": None}
        assert sfn.get_execution_history(executionArn=arn)["events"] == events
        key = json.loads(before["output"])["ResultWriterDetails"]["Key"]
        manifest = client("s3", second.url).get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read()
        assert json.loads(manifest)["MapRunArn"] == runs[0]["mapRunArn"]
        # The name is taken for good: the same name and input after the restart is refused.
        name = arn.rsplit(":", 1)[1]
        with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
            sfn.start_execution(
                stateMachineArn=MAPPER.arn, name=name, input='{"items": [1, 2], "fail": false}'
            )


def test_a_record_left_running_by_a_killed_server_is_aborted_and_says_why(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path)
    arn = DOUBLE.arn.replace(":stateMachine:", ":execution:") + ":orphan"
    store.add(ExecutionRecord(arn, DOUBLE.arn, "orphan", "{}", datetime.now(UTC)))
    reloaded = ExecutionStore(tmp_path).get(arn)
    assert reloaded is not None
    current = reloaded.snapshot()
    assert (current["status"], current["error"]) == ("ABORTED", "burstmap.ServerStopped")
    assert current["cause"].startswith("burstmap serve stopped while this execution was running")
    assert [event["type"] for event in current["events"]] == ["ExecutionAborted"]


def test_an_unreadable_record_is_skipped_not_fatal(tmp_path: Path, caplog: Any) -> None:
    (tmp_path / "executions").mkdir()
    (tmp_path / "executions" / "broken.json").write_text("{not json")
    assert ExecutionStore(tmp_path).all() == []
    assert "skipping unreadable execution record" in caplog.text


def test_executions_of_a_machine_the_app_no_longer_has(tmp_path: Path) -> None:
    with endpoint_over(tmp_path) as first:
        sfn = client("stepfunctions", first.url)
        arn = sfn.start_execution(stateMachineArn=DOUBLE.arn, input='{"value": 1}')["executionArn"]
        ended(sfn, arn)
    with endpoint_over(tmp_path, [machine for machine in MACHINES if machine is not DOUBLE]) as second:
        sfn = client("stepfunctions", second.url)
        assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
        with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
            sfn.describe_state_machine_for_execution(executionArn=arn)


def test_backend_events_are_kept_in_id_order_between_start_and_end(tmp_path: Path) -> None:
    """What a backend with state history reports (phase 2): numbered by it, possibly out of order."""
    store = ExecutionStore(tmp_path)
    arn = DOUBLE.arn.replace(":stateMachine:", ":execution:") + ":numbered"
    start = datetime.now(UTC)
    record = store.add(ExecutionRecord(arn, DOUBLE.arn, "numbered", "{}", start))
    record.started(DOUBLE.role_arn)
    assert record.next_event_id == 2
    entered = {"stateEnteredEventDetails": {"name": "Double", "input": "{}"}}
    record.history_event(HistoryEvent(3, "TaskScheduled", start, 2))
    record.history_event(HistoryEvent(2, "TaskStateEntered", start, 0, entered))
    record.finished(ExecutionOutcome("SUCCEEDED", datetime.now(UTC), output={"value": 2}))
    events = ExecutionStore(tmp_path).get(arn).snapshot()["events"]
    assert [(e["id"], e["type"], e["previousEventId"]) for e in events] == [
        (1, "ExecutionStarted", 0),
        (2, "TaskStateEntered", 0),
        (3, "TaskScheduled", 2),
        (4, "ExecutionSucceeded", 3),
    ]
    assert events[1]["stateEnteredEventDetails"] == entered["stateEnteredEventDetails"]


def test_a_failed_execution_is_redriven_after_a_restart(tmp_path: Path) -> None:
    """The redrive point and the map run's child records are in the state directory."""
    CONTROLS.reset()
    CONTROLS.broken.update({2, 3})  # two failures: past the one the map tolerates
    try:
        with endpoint_over(tmp_path) as first:
            sfn = client("stepfunctions", first.url)
            arn = sfn.start_execution(
                stateMachineArn=MAPPER.arn, input='{"items": [1, 2, 3], "fail": false}'
            )["executionArn"]
            assert ended(sfn, arn)["status"] == "FAILED"
        CONTROLS.reset()
        with endpoint_over(tmp_path) as second:
            sfn = client("stepfunctions", second.url)
            assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"
            sfn.redrive_execution(executionArn=arn)
            after = ended(sfn, arn)
            assert (after["status"], after["redriveCount"]) == ("SUCCEEDED", 1)
            assert set(CONTROLS.calls) == {2, 3}  # the child that succeeded before the restart is kept
            (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
            assert sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]["succeeded"] == 3
    finally:
        CONTROLS.reset()
