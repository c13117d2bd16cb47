"""The JSONata query language: literals vs `{% %}`, $states, AWS's functions, errors, each state kind."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_lambda import FakeRuntime

from burstmap.local import DefinitionError, FakeClock, UnsupportedFeature, execute, load_definition
from burstmap.local.core.errors import QueryEvaluationError
from burstmap.local.query.jsonata import Env, is_expression, resolve

ARN = "arn:aws:lambda:us-east-1:111111111111:function:echo"


def machine(*states: tuple[str, dict[str, Any]], language: str = "JSONata") -> dict[str, Any]:
    """States in order; each without Next/End gets Next to the following one (End for the last)."""
    named = dict(states)
    names = list(named)
    for position, name in enumerate(names):
        state = named[name]
        if state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state and "End" not in state:
            if position + 1 < len(names):
                state["Next"] = names[position + 1]
            else:
                state["End"] = True
    return {"QueryLanguage": language, "StartAt": names[0], "States": named}


def run(definition: dict[str, Any], data: Any = None, clock: FakeClock | None = None, **handlers: Any):
    runtime = FakeRuntime(handlers or {"echo": lambda event: event})
    return execute(definition, {} if data is None else data, runtime=runtime, clock=clock or FakeClock())


def output_of(template: Any, data: Any = None) -> Any:
    result = run(machine(("S", {"Type": "Pass", "Output": template})), data)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result.output


# ------------------------------------------------------------------------------ literals and values


def test_only_strings_that_are_entirely_an_expression_are_evaluated() -> None:
    template = {
        "expr": "{% $states.input.a %}",
        "spaced": " {% $states.input.a %}",
        "path": "$.a",
        "key.$": "$.a",
        "intrinsic": "States.Format('{}', 1)",
        "nested": [{"deep": "{% $states.input.a + 1 %}"}, "{%1%}"],
        "null": None,
    }
    assert output_of(template, {"a": 41}) == {
        "expr": 41,
        "spaced": " {% $states.input.a %}",
        "path": "$.a",
        "key.$": "$.a",
        "intrinsic": "States.Format('{}', 1)",
        "nested": [{"deep": 42}, 1],
        "null": None,
    }


def test_is_expression_needs_both_delimiters_at_the_ends() -> None:
    assert is_expression("{% 1 %}") and is_expression("{%1%}")
    assert not is_expression(" {% 1 %}") and not is_expression("{% 1 %} ") and not is_expression("{%}")


def test_json_null_is_a_value_but_undefined_fails_naming_the_field() -> None:
    assert output_of({"v": "{% $states.input.bar %}"}, {"bar": None}) == {"v": None}
    result = run(machine(("S", {"Type": "Pass", "Output": {"a": {"b": ["{% $states.input.absent %}"]}}})))
    assert (result.status, result.error) == ("FAILED", "States.QueryEvaluationError")
    assert result.cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). The JSONata "
        "expression '$states.input.absent' specified for the field 'Output/a/b[0]' returned nothing "
        "(undefined)."
    )


def test_states_context_holds_execution_state_machine_and_state() -> None:
    context = output_of("{% $states.context %}")
    assert set(context) == {"Execution", "StateMachine", "State"}
    assert context["State"]["Name"] == "S"
    assert context["Execution"]["Input"] == {}


def test_an_expression_that_fails_to_evaluate_is_a_query_evaluation_error() -> None:
    result = run(machine(("S", {"Type": "Pass", "Output": "{% $number('x') + $unknown() %}"})))
    assert result.error == "States.QueryEvaluationError"
    assert "specified for the field 'Output' failed to evaluate" in result.cause


# ---------------------------------------------------------------------- Step Functions' functions


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$partition([1, 2, 3, 4, 5], 2)", [[1, 2], [3, 4], [5]]),
        ("$partition([1, 2], 2.9)", [[1, 2]]),
        ("$range(0, 9, 3)", [0, 3, 6, 9]),
        ("$range(1, 9, 9)", 1),
        ("$range(5, 1, -2)", [5, 3, 1]),
        ("$hash('abc', 'SHA-256')", hashlib.sha256(b"abc").hexdigest()),
        ("$hash('abc', 'MD5')", hashlib.md5(b"abc").hexdigest()),
        ("$parse('{\"a\": [1, 2.5, true, null]}')", {"a": [1, 2.5, True, None]}),
        ("$random(7) = $random(7)", True),
        ("$base64encode('hi')", "aGk="),
        ("$contains('hello$world', /^hello\\$/)", True),
    ],
)
def test_functions(expression: str, expected: Any) -> None:
    assert output_of("{% " + expression + " %}") == expected


def test_uuid_is_a_version_4_uuid_and_random_is_below_one() -> None:
    value = output_of("{% $uuid() %}")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)
    assert 0 <= output_of("{% $random() %}") < 1


@pytest.mark.parametrize(
    "expression",
    ["$partition([], 2)", "$partition([1], 0)", "$range(0, 5, -1)", "$range(0, 5)", "$hash('a')"],
)
def test_functions_that_answer_undefined_fail_the_field(expression: str) -> None:
    result = run(machine(("S", {"Type": "Pass", "Output": "{% " + expression + " %}"})))
    assert result.error == "States.QueryEvaluationError" and "returned nothing (undefined)" in result.cause


def test_eval_is_not_available_use_parse() -> None:
    result = run(machine(("S", {"Type": "Pass", "Output": "{% $eval('1') %}"})))
    assert result.error == "States.QueryEvaluationError" and "use $parse" in result.cause


def test_resolve_outside_an_execution() -> None:
    env = Env({"input": {"n": 2}, "context": {}}, {"factor": 3})
    assert resolve({"x": "{% $states.input.n * $factor %}"}, "Output", env) == {"x": 6}
    with pytest.raises(QueryEvaluationError, match="'Output/y'"):
        resolve({"y": "{% $nope %}"}, "Output", env)


# ------------------------------------------------------------------------------------------ states


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


# -------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            machine(("S", {"Type": "Pass", "InputPath": "$.a"})),
            "field 'InputPath' is only supported for the 'JSONPath' QueryLanguage",
        ),
        (
            machine(("S", {"Type": "Pass", "QueryLanguage": "JSONPath"})),
            "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
        ),
        (
            machine(("S", {"Type": "Pass", "Output": "{% a[1,2) %}"})),
            "does not parse",
        ),
        (
            machine(("S", {"Type": "Pass", "Output": 1}), language="JSONPath"),
            "field 'Output' is only supported for the 'JSONata' QueryLanguage",
        ),
        (
            machine(("S", {"Type": "Pass", "Assign": {"states": 1}})),
            "'$states' is reserved",
        ),
        (
            {"QueryLanguage": "jsonata", "StartAt": "S", "States": {"S": {"Type": "Succeed"}}},
            "must be JSONPath or JSONata",
        ),
    ],
)
def test_definition_errors(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(message)):
        load_definition(definition)


def test_fields_the_engine_does_not_run_are_refused_by_name() -> None:
    task = {"Type": "Task", "Resource": ARN, "HeartbeatSeconds": 5}
    with pytest.raises(UnsupportedFeature, match="'HeartbeatSeconds' in state 'T'"):
        load_definition(machine(("T", task)))
    choice = {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "E", "Extra": 1}]}
    with pytest.raises(UnsupportedFeature, match="'Choices.Extra' in state 'C'"):
        load_definition(machine(("C", choice), ("E", {"Type": "Succeed"})))
