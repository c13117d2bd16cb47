"""Choice rules: the AWS-recorded Choice executions in the conformance set, and every operator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.query.choice_rules import (
    InvalidChoiceRule,
    evaluate_choice_rule,
    parse_timestamp,
    validate_choice_rule,
)
from tests.local.conformance_harness import CONFORMANCE_DIR

CASES = CONFORMANCE_DIR / "cases"
CHOICE_CASES = [
    "base_states/choice_aws_docs_not_and.json",
    "base_states/choice_boolean_equals_no_default.json",
    "base_states/choice_singleton_and.json",
    "context_object/choice_variable_context_path.json",
]


def _run(definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    """Just enough of an interpreter for these cases: Choice, Pass without fields, Fail."""
    context = {"Execution": {"Input": execution_input}}
    name = definition["StartAt"]
    data = execution_input
    while True:
        state = definition["States"][name]
        if state["Type"] == "Choice":
            for rule in state["Choices"]:
                validate_choice_rule(rule, name)
            chosen = [r["Next"] for r in state["Choices"] if evaluate_choice_rule(r, data, context)]
            name = chosen[0] if chosen else state["Default"]
        elif state["Type"] == "Pass":
            assert set(state) <= {"Type", "End", "Next"}
            if state.get("End"):
                return {"status": "SUCCEEDED", "output": data}
            name = state["Next"]
        else:
            assert state["Type"] == "Fail"
            return {"status": "FAILED", "error": state.get("Error"), "cause": state.get("Cause")}


RECORDED = pytest.mark.skipif(not CASES.is_dir(), reason=f"no conformance cases at {CASES}")


def _executions() -> list[Any]:
    params: list[Any] = []
    if not CASES.is_dir():  # a checkout without shared/ beside it: the recorded cases are skipped
        return params
    for relative in CHOICE_CASES:
        case = json.loads((CASES / relative).read_text())
        runs = [{"input": case["input"], "expected": case["expected"]}, *case.get("more_executions", [])]
        for number, run in enumerate(runs):
            params.append(pytest.param(case["definition"], run, id=f"{case['name']}-{number}"))
    return params


@pytest.mark.parametrize(("definition", "run"), _executions())
def test_conformance_execution(definition: dict[str, Any], run: dict[str, Any]) -> None:
    assert _run(definition, run["input"]) == run["expected"]


@RECORDED
def test_docs_example_takes_each_branch() -> None:
    definition = json.loads((CASES / CHOICE_CASES[0]).read_text())["definition"]
    assert _run(definition, {"type": "Public", "value": 22})["output"] == {"type": "Public", "value": 22}
    assert _run(definition, {"type": "Private", "value": 0})["status"] == "SUCCEEDED"
    assert _run(definition, {"type": "Private", "value": 35}) == {
        "status": "FAILED",
        "error": None,
        "cause": "No Matches!",
    }


def match(rule: dict[str, Any], data: Any, context: Any = None) -> bool:
    validate_choice_rule(rule, "Check", top_level=False)
    return evaluate_choice_rule(rule, data, context or {})


def runtime_cause(rule: dict[str, Any], data: Any) -> str:
    with pytest.raises(StateRuntimeError) as raised:
        match(rule, data)
    assert raised.value.error == "States.Runtime"
    return raised.value.cause


# --- operators ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "operand", "value", "expected"),
    [
        ("NumericEquals", 3, 3, True),
        ("NumericEquals", 3, 3.0, True),
        ("NumericEquals", 3, 4, False),
        ("NumericGreaterThan", 3, 3.5, True),
        ("NumericGreaterThan", 3, 3, False),
        ("NumericGreaterThanEquals", 3, 3, True),
        ("NumericLessThan", 3, -1, True),
        ("NumericLessThan", 3, 3, False),
        ("NumericLessThanEquals", 3, 3, True),
        ("StringEquals", "a", "a", True),
        ("StringEquals", "a", "A", False),
        ("StringGreaterThan", "MyStringABC", "MyStringABD", True),
        ("StringGreaterThanEquals", "b", "b", True),
        ("StringLessThan", "b", "a", True),
        ("StringLessThanEquals", "b", "c", False),
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", False, True, False),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "2001-01-01T13:00:00+01:00", True),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00.000000001Z", False),
        ("TimestampGreaterThan", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00.5Z", True),
        ("TimestampGreaterThanEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00Z", True),
        ("TimestampLessThan", "2001-01-01T12:00:00Z", "2000-12-31T23:59:59Z", True),
        ("TimestampLessThanEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:01Z", False),
    ],
)
def test_comparison_operators(operator: str, operand: Any, value: Any, expected: bool) -> None:
    assert match({"Variable": "$.v", operator: operand}, {"v": value}) is expected


@pytest.mark.parametrize(
    ("operator", "operand", "value"),
    [
        ("NumericEquals", 1, "1"),
        ("NumericEquals", 1, True),
        ("NumericGreaterThan", 0, None),
        ("NumericLessThan", 5, [1]),
        ("StringEquals", "1", 1),
        ("StringLessThan", "z", {"a": 1}),
        ("StringMatches", "*", 5),
        ("BooleanEquals", True, 1),
        ("BooleanEquals", False, "false"),
        ("TimestampEquals", "2001-01-01T12:00:00Z", 978350400),
        ("TimestampLessThan", "2001-01-01T12:00:00Z", "not a time"),
    ],
)
def test_a_wrong_typed_value_compares_false_not_error(operator: str, operand: Any, value: Any) -> None:
    assert match({"Variable": "$.v", operator: operand}, {"v": value}) is False
    assert match({"Not": {"Variable": "$.v", operator: operand}}, {"v": value}) is True


def test_string_order_is_java_utf16_order() -> None:
    # U+FF5E sorts after U+1F600 in code points but before it in UTF-16 units (0xD83D...).
    assert match({"Variable": "$.v", "StringGreaterThan": "\U0001f600"}, {"v": "\uff5e"}) is True


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("log-*.txt", "log-2024.txt", True),
        ("log-*.txt", "log-.txt", True),
        ("log-*.txt", "log-1.txt.bak", False),
        ("*", "", True),
        ("a*b*c", "aXXbYYc", True),
        ("a.b", "aXb", False),  # nothing but * is special
        ("a?b", "aXb", False),
        ("[ab]", "a", False),
        ("star\\*", "star*", True),
        ("star\\*", "starry", False),
        ("back\\\\slash*", "back\\slash!", True),
        ("multi\nline*", "multi\nline end", True),
    ],
)
def test_string_matches_wildcards_and_escaped_star(pattern: str, value: str, expected: bool) -> None:
    assert match({"Variable": "$.v", "StringMatches": pattern}, {"v": value}) is expected


@pytest.mark.parametrize(
    ("operator", "true_for", "false_for"),
    [
        ("IsNull", None, 0),
        ("IsBoolean", False, "true"),
        ("IsNumeric", 1.5, True),
        ("IsString", "", None),
        ("IsTimestamp", "2016-08-18T17:33:00Z", "2016-08-18 17:33:00Z"),
    ],
)
def test_type_tests(operator: str, true_for: Any, false_for: Any) -> None:
    assert match({"Variable": "$.v", operator: True}, {"v": true_for}) is True
    assert match({"Variable": "$.v", operator: True}, {"v": false_for}) is False
    assert match({"Variable": "$.v", operator: False}, {"v": false_for}) is True


def test_is_present_never_raises() -> None:
    assert match({"Variable": "$.v", "IsPresent": True}, {"v": None}) is True
    assert match({"Variable": "$.v", "IsPresent": True}, {}) is False
    assert match({"Variable": "$.v", "IsPresent": False}, {}) is True
    assert match({"Variable": "$.a[3]", "IsPresent": True}, {"a": [1]}) is False


def test_missing_variable_is_a_runtime_error_with_aws_text() -> None:
    assert runtime_cause({"Variable": "$.type", "StringEquals": "x"}, {}) == (
        "Invalid path '$.type': The choice state's condition path references an invalid value."
    )
    assert "Invalid path '$.v'" in runtime_cause({"Variable": "$.v", "IsNull": True}, {})


def test_missing_path_operand_is_a_runtime_error() -> None:
    cause = runtime_cause({"Variable": "$.a", "NumericEqualsPath": "$.b"}, {"a": 1})
    assert cause.startswith("Invalid path '$.b'")


def test_and_short_circuits_past_a_missing_field() -> None:
    rule = {
        "And": [
            {"Variable": "$.k", "IsPresent": True},
            {"Variable": "$.k", "StringEquals": "foo"},
        ]
    }
    assert match(rule, {}) is False
    assert match(rule, {"k": "foo"}) is True
    assert match(
        {"Or": [{"Variable": "$.k", "IsNull": True}, {"Variable": "$.nope", "IsNull": True}]}, {"k": None}
    )


@pytest.mark.parametrize(
    ("operator", "left", "right", "expected"),
    [
        ("NumericGreaterThanPath", 5, 3, True),
        ("NumericEqualsPath", 5, "5", False),
        ("StringEqualsPath", "a", "a", True),
        ("StringLessThanEqualsPath", "a", "b", True),
        ("BooleanEqualsPath", True, True, True),
        ("TimestampGreaterThanPath", "2020-01-01T00:00:00Z", "2019-12-31T23:00:00-02:00", False),
        ("TimestampEqualsPath", "2020-01-01T00:00:00Z", "2019-12-31T22:00:00-02:00", True),
    ],
)
def test_path_operators_compare_two_input_values(
    operator: str, left: Any, right: Any, expected: bool
) -> None:
    assert match({"Variable": "$.l", operator: "$.r"}, {"l": left, "r": right}) is expected


def test_context_variable_and_whole_input() -> None:
    assert match({"Variable": "$$.Map.Item.Index", "NumericEquals": 2}, {}, {"Map": {"Item": {"Index": 2}}})
    assert match({"Variable": "$", "NumericEquals": 3}, 3)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2016-08-18T17:33:00Z", True),
        ("2016-08-18T17:33:00.123456789+05:30", True),
        ("2016-02-29T00:00:00Z", True),
        ("2015-02-29T00:00:00Z", False),
        ("2016-08-18t17:33:00Z", False),
        ("2016-08-18T17:33:00z", False),
        ("2016-08-18T17:33:00", False),
        ("2016-08-18T25:33:00Z", False),
        ("2016-08-18 17:33:00Z", False),
        ("2016-08-18T17:33Z", False),
    ],
)
def test_timestamp_parsing(text: str, valid: bool) -> None:
    assert (parse_timestamp(text) is not None) is valid


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"Variable": "$.a", "StringEquals": "x"}, "needs a 'Next'"),
        ({"Variable": "$.a", "Next": "S"}, "exactly one comparison operator"),
        ({"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1, "Next": "S"}, "exactly one"),
        ({"Variable": "a", "StringEquals": "x", "Next": "S"}, "reference path"),
        ({"Variable": "$.a", "StringEquals": 1, "Next": "S"}, "must be a string"),
        ({"Variable": "$.a", "NumericEquals": "1", "Next": "S"}, "must be a number"),
        ({"Variable": "$.a", "BooleanEquals": "true", "Next": "S"}, "must be true or false"),
        ({"Variable": "$.a", "IsNull": 1, "Next": "S"}, "must be true or false"),
        ({"Variable": "$.a", "TimestampEquals": "yesterday", "Next": "S"}, "RFC 3339"),
        ({"Variable": "$.a", "StringEqualsPath": "b", "Next": "S"}, "reference path"),
        ({"Variable": "$.a", "StringEqualsBogus": "x", "Next": "S"}, "exactly one"),
        ({"And": [], "Next": "S"}, "non-empty array"),
        ({"And": [{"Variable": "$.a", "IsNull": True, "Next": "T"}], "Next": "S"}, "only on top-level"),
        ({"Not": {"Variable": "$.a"}, "Next": "S"}, "exactly one"),
        ({"And": [{"Variable": "$.a", "IsNull": True}], "Or": [], "Next": "S"}, "either one of"),
        ({"Variable": "$.a", "IsNull": True, "Next": "S", "Extra": 1}, "unsupported field"),
    ],
)
def test_invalid_rules_are_refused_naming_the_state(rule: Any, message: str) -> None:
    with pytest.raises(InvalidChoiceRule, match=message) as raised:
        validate_choice_rule(rule, "CheckState")
    assert "'CheckState'" in str(raised.value)


def test_valid_nested_rule_passes_validation() -> None:
    validate_choice_rule(
        {
            "Not": {"Or": [{"Variable": "$$.Execution.Input.x", "StringMatches": "a*"}]},
            "Next": "S",
            "Comment": "ok",
        },
        "CheckState",
    )
