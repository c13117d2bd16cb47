"""JSONata expressions (burstmap.local.query.jsonata): which strings are evaluated, values and
undefined, `$states`, and Step Functions' functions."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from burstmap.local.core.errors import QueryEvaluationError
from burstmap.local.query.jsonata import Env, is_expression, resolve
from tests.local.engine_support import chain, run


def machine(*states: tuple[str, dict[str, Any]], language: str = "JSONata") -> dict[str, Any]:
    return chain(*states, language=language)


def output_of(template: Any, data: Any = None) -> Any:
    result = run(machine(("S", {"Type": "Pass", "Output": template})), data)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result.output


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
