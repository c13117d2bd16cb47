"""The history events an execution emits (execute(on_event=...)): the types, order, ids and details AWS
records, each event valid against botocore's HistoryEvent shape; and the same ids when nobody records."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from burstmap.local import FakeClock, HistoryEvent, execute
from tests.local.engine_support import chain
from tests.local.fake_lambda import FakeRuntime

HISTORY_EVENT = botocore.session.get_session().get_service_model("stepfunctions").shape_for("HistoryEvent")
INVOKE = "arn:aws:states:::lambda:invoke"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111111111111:function:echo"


def task(**fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": INVOKE,
        "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
        **fields,
    }


def recorded(definition: dict[str, Any], data: Any = None, **handlers: Any) -> tuple[Any, list[HistoryEvent]]:
    events: list[HistoryEvent] = []
    runtime = FakeRuntime(handlers or {"echo": lambda event: event})
    result = execute(definition, data or {}, runtime=runtime, clock=FakeClock(), on_event=events.append)
    for event in events:
        body = {
            "timestamp": event.timestamp,
            "type": event.type,
            "id": event.id,
            "previousEventId": event.previous_event_id,
            **(event.details or {}),
        }
        report = ParamValidator().validate(body, HISTORY_EVENT)
        assert not report.has_errors(), f"{event.type}: {report.generate_report()}"
    return result, sorted(events, key=lambda event: event.id)


def types(events: list[HistoryEvent]) -> list[str]:
    return [event.type for event in events]


def test_a_lambda_invoke_task_then_a_pass_as_aws_records_them():
    result, events = recorded(
        chain(("Call", task(OutputPath="$.Payload")), ("Done", {"Type": "Pass"})), {"a": 1}
    )
    assert result.status == "SUCCEEDED"
    assert [(e.id, e.previous_event_id, e.type) for e in events] == [
        (2, 0, "TaskStateEntered"),
        (3, 2, "TaskScheduled"),
        (4, 3, "TaskStarted"),
        (5, 4, "TaskSucceeded"),
        (6, 5, "TaskStateExited"),
        (7, 6, "PassStateEntered"),
        (8, 7, "PassStateExited"),
    ]
    assert events[0].details == {
        "stateEnteredEventDetails": {"name": "Call", "input": '{"a":1}', "inputDetails": {"truncated": False}}
    }
    scheduled = events[1].details["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"], scheduled["region"]) == (
        "lambda",
        "invoke",
        "us-east-1",
    )
    assert json.loads(scheduled["parameters"]) == {"FunctionName": "echo", "Payload": {"a": 1}}
    succeeded = events[3].details["taskSucceededEventDetails"]
    assert json.loads(succeeded["output"])["Payload"] == {"a": 1}
    assert events[4].details["stateExitedEventDetails"]["output"] == '{"a":1}'


def test_a_function_arn_task_has_lambda_function_events_and_a_retry_schedules_again():
    calls = []

    def flaky(event: Any) -> Any:
        calls.append(event)
        if len(calls) == 1:
            raise ValueError("first time")
        return "ok"

    definition = chain(
        ("Call", {"Type": "Task", "Resource": FUNCTION_ARN, "Retry": [{"ErrorEquals": ["ValueError"]}]}),
    )
    result, events = recorded(definition, {"x": 1}, echo=flaky)
    assert result.status == "SUCCEEDED"
    assert types(events) == [
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
    ]
    scheduled = events[1].details["lambdaFunctionScheduledEventDetails"]
    assert (scheduled["resource"], scheduled["input"]) == (FUNCTION_ARN, '{"x":1}')
    failed = events[3].details["lambdaFunctionFailedEventDetails"]
    assert failed["error"] == "ValueError" and json.loads(failed["cause"])["errorMessage"] == "first time"
    assert events[2].details is None  # LambdaFunctionStarted has no details
    assert events[6].details == {
        "lambdaFunctionSucceededEventDetails": {"output": '"ok"', "outputDetails": {"truncated": False}}
    }


def test_an_uncaught_failure_ends_the_history_at_the_failed_task():
    def fail(event: Any) -> Any:
        raise KeyError("nope")

    result, events = recorded(chain(("Call", task()), ("Never", {"Type": "Pass"})), echo=fail)
    assert result.status == "FAILED"
    assert types(events) == ["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed"]
    failed = events[-1].details["taskFailedEventDetails"]
    assert (failed["resourceType"], failed["error"]) == ("lambda", "KeyError")


def test_a_caught_failure_exits_the_task_and_goes_on():
    def fail(event: Any) -> Any:
        raise KeyError("nope")

    definition = chain(
        ("Call", task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handle"}])),
        ("Handle", {"Type": "Pass"}),
    )
    result, events = recorded(definition, echo=fail)
    assert result.status == "SUCCEEDED"
    assert types(events)[3:] == ["TaskFailed", "TaskStateExited", "PassStateEntered", "PassStateExited"]


def test_parallel_branches_and_an_inline_map_have_their_started_and_succeeded_events():
    definition = chain(
        (
            "Both",
            {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                ],
                "ResultPath": "$.both",
            },
        ),
        (
            "Each",
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "ResultPath": "$.each",
            },
        ),
    )
    result, events = recorded(definition, {"items": [1, 2]})
    assert result.status == "SUCCEEDED"
    assert types(events) == [
        "ParallelStateEntered",
        "ParallelStateStarted",
        *(["PassStateEntered", "PassStateExited"] * 2),
        "ParallelStateSucceeded",
        "ParallelStateExited",
        "MapStateEntered",
        "MapStateStarted",
        *(["MapIterationStarted", "PassStateEntered", "PassStateExited", "MapIterationSucceeded"] * 2),
        "MapStateSucceeded",
        "MapStateExited",
    ]
    branch_starts = [e for e in events if e.type == "PassStateEntered"][:2]
    assert {e.previous_event_id for e in branch_starts} == {3}  # each branch follows ParallelStateStarted
    started = next(e for e in events if e.type == "MapStateStarted")
    assert started.details == {"mapStateStartedEventDetails": {"length": 2}}
    iteration = next(e for e in events if e.type == "MapIterationStarted")
    assert iteration.details == {"mapIterationStartedEventDetails": {"name": "Each", "index": 0}}


def test_a_distributed_map_has_map_run_events_and_none_of_its_children():
    definition = chain(
        (
            "Fan",
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": task(OutputPath="$.Payload", End=True)},
                },
            },
        ),
    )
    result, events = recorded(definition, {"items": [1, 2, 3]})
    assert result.status == "SUCCEEDED" and result.output == [1, 2, 3]
    assert types(events) == [
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
    ]
    assert events[2].details == {"mapRunStartedEventDetails": {"mapRunArn": result.map_runs[0].map_run_arn}}


def test_a_failed_map_run_says_why():
    definition = chain(
        (
            "Fan",
            {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": task(End=True)},
                },
            },
        ),
    )

    def fail(event: Any) -> Any:
        raise ValueError("bad item")

    result, events = recorded(definition, [1], echo=fail)
    assert result.error == "States.ExceedToleratedFailureThreshold"
    assert types(events)[-2:] == ["MapRunFailed", "MapStateFailed"]
    assert events[-2].details == {
        "mapRunFailedEventDetails": {
            "error": "States.ExceedToleratedFailureThreshold",
            "cause": "The specified tolerated failure threshold was exceeded",
        }
    }


@pytest.mark.parametrize("first", [2, 40])
def test_ids_start_where_the_caller_says_and_match_the_causes(first: int):
    """The entered-event id in a States.Runtime cause is the id the StateEntered event has."""
    definition = chain(("A", {"Type": "Pass"}), ("B", {"Type": "Pass", "InputPath": "$.missing"}))
    events: list[HistoryEvent] = []
    result = execute(definition, {}, clock=FakeClock(), on_event=events.append, first_event_id=first)
    entered_b = next(
        e
        for e in events
        if e.type == "PassStateEntered" and e.details["stateEnteredEventDetails"]["name"] == "B"
    )
    assert entered_b.id == first + 2
    assert f"(entered at the event id #{entered_b.id})" in result.cause
    unrecorded = execute(definition, {}, clock=FakeClock(), first_event_id=first)
    assert unrecorded.cause == result.cause
