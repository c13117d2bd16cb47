"""The states in JSONata: Arguments, Output, Assign, Catch, Choice conditions, Wait, Fail, Parallel,
inline and distributed Map, and JSONata states in a JSONPath machine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from burstmap.local import FakeClock, UnsupportedFeature
from tests.local.engine_support import ARN, chain, run


def machine(*states: tuple[str, dict[str, Any]], language: str = "JSONata") -> dict[str, Any]:
    return chain(*states, language=language)


def test_task_arguments_output_and_result() -> None:
    task = {
        "Type": "Task",
        "Resource": ARN,
        "Arguments": {"n": "{% $states.input.n * 2 %}"},
        "Output": {"in": "{% $states.input %}", "got": "{% $states.result.n %}"},
    }
    assert run(machine(("T", task)), {"n": 5}).output == {"in": {"n": 5}, "got": 10}


def test_task_output_defaults_to_the_result_and_lambda_invoke_takes_arguments() -> None:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": "echo", "Payload": {"v": "{% $states.input.v %}"}},
        "TimeoutSeconds": "{% 10 %}",
    }
    assert run(machine(("T", task)), {"v": 1}).output["Payload"] == {"v": 1}


def test_catch_output_sees_error_output_and_input_and_retry_count_is_in_context() -> None:
    def boom(event: Any) -> Any:
        raise ValueError("no")

    task = {
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:111111111111:function:boom",
        "Retry": [{"ErrorEquals": ["ValueError"], "MaxAttempts": 1}],
        "Catch": [
            {
                "ErrorEquals": ["States.ALL"],
                "Output": {"input": "{% $states.input %}", "error": "{% $states.errorOutput.Error %}"},
                "Assign": {"tries": "{% $states.context.State.RetryCount %}"},
                "Next": "After",
            }
        ],
        "Next": "After",
    }
    after = {"Type": "Pass", "Output": {"out": "{% $states.input %}", "tries": "{% $tries %}"}, "End": True}
    result = run(machine(("T", task), ("After", after)), {"a": 1}, boom=boom)
    assert result.output == {"out": {"input": {"a": 1}, "error": "ValueError"}, "tries": 1}


def test_catch_default_output_is_the_error_output_and_query_errors_are_catchable() -> None:
    task = {
        "Type": "Task",
        "Resource": ARN,
        "Arguments": "{% $states.input.missing %}",
        "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Done"}],
        "End": True,
    }
    result = run(machine(("T", task), ("Done", {"Type": "Succeed"})))
    assert result.output["Error"] == "States.QueryEvaluationError"
    assert "'Arguments' returned nothing" in result.output["Cause"]


def test_choice_condition_rule_output_and_default_output() -> None:
    choice = {
        "Type": "Choice",
        "Choices": [
            {
                "Condition": "{% $states.input.n > 1 %}",
                "Next": "Big",
                "Output": {"big": "{% $states.input.n %}"},
            }
        ],
        "Default": "Small",
        "Output": "small",
    }
    definition = machine(("C", choice), ("Big", {"Type": "Succeed"}), ("Small", {"Type": "Succeed"}))
    assert run(definition, {"n": 5}).output == {"big": 5}
    assert run(definition, {"n": 0}).output == "small"


def test_choice_condition_must_be_boolean() -> None:
    choice = {"Type": "Choice", "Choices": [{"Condition": "{% 'yes' %}", "Next": "End"}]}
    result = run(machine(("C", choice), ("End", {"Type": "Succeed"})))
    assert result.error == "States.QueryEvaluationError" and "'Choices[0]/Condition'" in result.cause


def test_wait_seconds_and_timestamp_expressions() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    run(machine(("W", {"Type": "Wait", "Seconds": "{% $states.input.s %}"})), {"s": 3}, clock=clock)
    assert clock.sleeps == [3]
    wait = {"Type": "Wait", "Timestamp": "{% $states.input.t %}"}
    assert run(machine(("W", wait)), {"t": "2016-03-14T01:59:00Z"}).status == "SUCCEEDED"
    result = run(machine(("W", wait)), {"t": "2016-12-05T21:29:29"})
    assert result.error == "States.QueryEvaluationError"
    assert result.cause.endswith(
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: "
        "2016-12-05T21:29:29"
    )
    negative = run(machine(("W", {"Type": "Wait", "Seconds": "{% -1 %}"})))
    assert negative.error == "States.QueryEvaluationError"


def test_fail_error_and_cause_expressions() -> None:
    fail = {"Type": "Fail", "Error": "{% $states.input.e %}", "Cause": "{% 'because ' & $states.input.c %}"}
    result = run(machine(("F", fail)), {"e": "Bad", "c": "x"})
    assert (result.status, result.error, result.cause) == ("FAILED", "Bad", "because x")


def test_parallel_arguments_and_output() -> None:
    branch = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% $states.input.v %}", "End": True}},
    }
    parallel = {
        "Type": "Parallel",
        "Arguments": {"v": "{% $states.input.v + 1 %}"},
        "Branches": [branch, branch],
        "Output": "{% $sum($states.result) %}",
    }
    assert run(machine(("P", parallel)), {"v": 1}).output == 4


def test_inline_map_items_item_selector_and_max_concurrency_expression() -> None:
    processor = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    state = {
        "Type": "Map",
        "Items": "{% $states.input.xs %}",
        "MaxConcurrency": "{% 2 %}",
        "ItemSelector": {
            "v": "{% $states.context.Map.Item.Value %}",
            "i": "{% $states.context.Map.Item.Index %}",
            "k": "{% $states.input.k %}",
        },
        "ItemProcessor": processor,
    }
    assert run(machine(("M", state)), {"xs": ["a", "b"], "k": 0}).output == [
        {"v": "a", "i": 0, "k": 0},
        {"v": "b", "i": 1, "k": 0},
    ]


def test_map_without_items_needs_an_array_input() -> None:
    processor = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    state = {"Type": "Map", "ItemProcessor": processor}
    assert run(machine(("M", state)), [1, 2]).output == [1, 2]
    result = run(machine(("M", state)), {"foo": "bar"})
    assert result.error == "States.QueryEvaluationError"
    assert result.cause.endswith('Map state input must be an array but was: {"foo":"bar"}')


def test_distributed_map_with_item_batcher_and_tolerance_expressions() -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    state = {
        "Type": "Map",
        "Items": "{% $range(1, 5, 1) %}",
        "ItemSelector": {"x": "{% $states.context.Map.Item.Value * 10 %}"},
        "ItemBatcher": {"MaxItemsPerBatch": "{% $states.input.per %}", "BatchInput": {"b": "{% 1 %}"}},
        "ToleratedFailurePercentage": "{% 0 %}",
        "ItemProcessor": processor,
        "Output": "{% $count($states.result) %}",
    }
    assert run(machine(("M", state)), {"per": 2}).output == 3
    state["Output"] = "{% $states.result[0] %}"
    assert run(machine(("M", state)), {"per": 2}).output == {
        "Items": [{"x": 10}, {"x": 20}],
        "BatchInput": {"b": 1},
    }


def test_distributed_map_values_are_checked_when_evaluated() -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    state = {
        "Type": "Map",
        "Items": [1],
        "ItemBatcher": {"MaxItemsPerBatch": "{% 0 %}"},
        "ItemProcessor": processor,
    }
    result = run(machine(("M", state)))
    assert result.error == "States.QueryEvaluationError" and "MaxItemsPerBatch" in result.cause


def test_query_language_on_single_states_of_a_jsonpath_machine() -> None:
    definition = machine(
        ("A", {"Type": "Pass", "Parameters": {"x.$": "$.v"}}),
        ("B", {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input.x * 2 %}"}),
        language="JSONPath",
    )
    assert run(definition, {"v": 4}).output == 8


def test_map_item_source_in_inline_and_distributed_maps_and_both_query_languages() -> None:
    """Guide, "Context object data for Map states"
    (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html): the
    example's ItemSelector reads `$$.Map.Item.Source` (JSONPath) and
    `$states.context.Map.Item.Source` (JSONata), "STATE_DATA" for items from the state input."""
    processor = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    distributed = {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, **processor}
    jsonpath_selector = {"i.$": "$$.Map.Item.Index", "s.$": "$$.Map.Item.Source"}
    jsonata_selector = {
        "i": "{% $states.context.Map.Item.Index %}",
        "s": "{% $states.context.Map.Item.Source %}",
    }
    expected = [{"i": 0, "s": "STATE_DATA"}, {"i": 1, "s": "STATE_DATA"}]
    for item_processor in (processor, distributed):
        jsonpath = {"Type": "Map", "ItemSelector": jsonpath_selector, "ItemProcessor": item_processor}
        jsonata = {
            "Type": "Map",
            "Items": ["a", "b"],
            "ItemSelector": jsonata_selector,
            "ItemProcessor": item_processor,
        }
        assert run(machine(("M", jsonpath), language="JSONPath"), ["a", "b"]).output == expected
        assert run(machine(("M", jsonata))).output == expected


def test_a_distributed_map_over_a_json_object_is_refused_as_not_supported_locally() -> None:
    """Guide, "ItemReader (Map)"
    (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html): a
    Distributed Map's input may now be a JSON object, iterated as key-value pairs. The pairs' shape
    is not documented and earlier recorded runs failed, so the engine refuses rather than guesses;
    an inline Map keeps the recorded failure (conformance case jsonata/map_input_must_be_array)."""
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    for definition in (
        machine(("M", {"Type": "Map", "Items": "{% $states.input %}", "ItemProcessor": processor})),
        machine(("M", {"Type": "Map", "ItemsPath": "$.o", "ItemProcessor": processor}), language="JSONPath"),
    ):
        with pytest.raises(UnsupportedFeature, match="key-value pairs of a JSON object .state 'M'."):
            run(definition, {"o": {"a": 1}})
    inline = machine(
        (
            "M",
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            },
        )
    )
    assert run(inline, {"a": 1}).error == "States.QueryEvaluationError"
