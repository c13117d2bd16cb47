"""Intrinsic functions: every AWS-recorded execution in the conformance set, plus unit tests for the
behaviours those recordings do not reach (errors, escapes, limits, seeds)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.query.intrinsics import (
    IntrinsicSyntaxError,
    evaluate_intrinsic,
    is_intrinsic,
    parse_intrinsic,
)
from tests.local.conformance_harness import CONFORMANCE_DIR

CASES_DIR = CONFORMANCE_DIR / "cases" / "intrinsic_functions"
STATE_MACHINE_NAME = "statemachine_abc123"
EXECUTION_NAME = "0f3c8d3e-4a63-4c52-9d8a-5b0f1f0c2a11"
STATE_MACHINE_ARN = f"arn:aws:states:us-east-1:111111111111:stateMachine:{STATE_MACHINE_NAME}"
PLACEHOLDERS = {"<ArnPart_0idx>": STATE_MACHINE_NAME, "<ExecArnPart_0idx>": EXECUTION_NAME}


def _context(execution_input: Any) -> dict[str, Any]:
    return {
        "Execution": {
            "Id": f"arn:aws:states:us-east-1:111111111111:execution:{STATE_MACHINE_NAME}:{EXECUTION_NAME}",
            "Input": execution_input,
            "Name": EXECUTION_NAME,
            "StartTime": "2024-01-01T00:00:00.000Z",
        },
        "StateMachine": {"Id": STATE_MACHINE_ARN, "Name": STATE_MACHINE_NAME},
        "State": {"Name": "State_0", "EnteredTime": "2024-01-01T00:00:00.000Z"},
    }


def _set_path(data: Any, path: str, value: Any) -> Any:
    """The simple '$.a.b' ResultPath the recorded cases use."""
    if path == "$":
        return value
    result = json.loads(json.dumps(data)) if isinstance(data, dict) else {}
    node = result
    keys = path[2:].split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return result


def _get_path(data: Any, path: str) -> Any:
    for key in path[2:].split(".") if path != "$" else []:
        data = data[key]
    return data


def _run_pass_state(definition: dict[str, Any], execution_input: Any) -> Any:
    """Just enough of a Pass state for these cases: Parameters (intrinsics), ResultPath, OutputPath."""
    state = definition["States"][definition["StartAt"]]
    assert state["Type"] == "Pass" and state.get("End") is True
    context = _context(execution_input)
    result = {}
    for key, value in state["Parameters"].items():
        assert key.endswith(".$") and is_intrinsic(value), (key, value)
        result[key[:-2]] = evaluate_intrinsic(value, execution_input, context)
    output = _set_path(execution_input, state.get("ResultPath", "$"), result)
    return _get_path(output, state.get("OutputPath", "$"))


def _substitute(value: Any) -> Any:
    if isinstance(value, str):
        for placeholder, concrete in PLACEHOLDERS.items():
            value = value.replace(placeholder, concrete)
        return value
    if isinstance(value, list):
        return [_substitute(item) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item) for key, item in value.items()}
    return value


def assert_json_equal(actual: Any, expected: Any, where: str = "$") -> None:
    """Structural JSON equality that keeps booleans apart from numbers and ints apart from floats."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, int):
        assert type(actual) is int and actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_json_equal(got, want, f"{where}[{index}]")
    else:
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), f"{where}: {actual!r}"
        for key in expected:
            assert_json_equal(actual[key], expected[key], f"{where}.{key}")


def _executions() -> list[Any]:
    params = []
    for case_file in sorted(CASES_DIR.glob("*.json")):
        case = json.loads(case_file.read_text())
        runs = [{"input": case["input"], "expected": case["expected"]}, *case.get("more_executions", [])]
        for number, run in enumerate(runs):
            params.append(pytest.param(case["definition"], run, id=f"{case['name']}-{number}"))
    return params


EXECUTIONS = _executions()


@pytest.mark.skipif(not CASES_DIR.is_dir(), reason=f"no conformance cases at {CASES_DIR}")
def test_every_recorded_execution_is_collected() -> None:
    assert len(EXECUTIONS) == 123  # the README's count for intrinsic_functions


@pytest.mark.parametrize(("definition", "run"), EXECUTIONS)
def test_conformance_execution(definition: dict[str, Any], run: dict[str, Any]) -> None:
    expected = run["expected"]
    assert expected["status"] == "SUCCEEDED"
    assert_json_equal(_run_pass_state(definition, run["input"]), _substitute(expected["output"]))


def ev(expression: str, data: Any = None, context: Any = None) -> Any:
    return evaluate_intrinsic(expression, {} if data is None else data, context or {})


def runtime_cause(expression: str, data: Any = None, context: Any = None) -> str:
    with pytest.raises(StateRuntimeError) as raised:
        ev(expression, data, context)
    assert raised.value.error == "States.Runtime"
    return raised.value.cause


# --- parsing and literals -----------------------------------------------------------------------


def test_string_literal_escapes_are_aws_reserved_characters() -> None:
    assert ev(r"States.Format('it\'s \{\} and \\ {}', 1)") == "it's {} and \\ 1"
    assert ev(r"States.Array('a\'b', 'c,d', 'e)f')") == ["a'b", "c,d", "e)f"]


def test_literals_numbers_booleans_null() -> None:
    assert ev("States.Array(1, -2, 1.5, 2e3, true, false, null)") == [1, -2, 1.5, 2000.0, True, False, None]


def test_nested_calls_and_whitespace() -> None:
    assert ev("States.ArrayLength( States.Array( 1 , States.Array(2) ) )") == 2


def test_bracket_path_with_space_comma_and_paren() -> None:
    data = {"abc": {"def ghi": "x", "a,b)": "y"}}
    assert ev("States.Array($.abc['def ghi'], $.abc['a,b)'])", data) == ["x", "y"]
    assert ev("States.Array($.abc.['def ghi'])", data) == ["x"]


def test_context_paths_and_whole_input() -> None:
    assert ev("States.Array($, $$.Map.Item.Index)", {"a": 1}, {"Map": {"Item": {"Index": 3}}}) == [
        {"a": 1},
        3,
    ]


def test_wildcard_argument_is_a_list_even_when_empty() -> None:
    assert ev("States.ArrayLength($.items[*].nope)", {"items": [1, 2]}) == 0
    assert ev("States.Array($.items[*].v)", {"items": [{"v": 1}, {"v": 2}]}) == [[1, 2]]


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope(1)",
        "States.Format",
        "States.Format('unterminated)",
        "States.ArrayLength($.a, $.b)",
        "States.UUID(1)",
        "States.Array(1,)",
        "States.Array(1) trailing",
        "States.Array(bogus)",
        "States.Array('open escape\\",
        "States.Array(" * 11 + ")" * 11,
    ],
)
def test_invalid_syntax_is_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(IntrinsicSyntaxError, match="invalid intrinsic function"):
        parse_intrinsic(text)
    assert runtime_cause(text).startswith("invalid intrinsic function")


def test_is_intrinsic_tells_calls_from_paths() -> None:
    assert is_intrinsic("States.Array($.a)")
    assert not is_intrinsic("$.States")
    assert not is_intrinsic(3)


# --- AWS's failure texts ------------------------------------------------------------------------


def test_missing_path_argument_names_the_whole_expression_and_the_input() -> None:
    expression = "States.Format('{}', States.Format('{}', $.nope))"
    assert runtime_cause(expression, {"other": 1}) == (
        f"The function '{expression}' had the following error: The JsonPath argument for the field "
        "'$.nope' could not be found in the input '{\"other\":1}'"
    )


def test_index_past_the_end_is_a_missing_argument() -> None:
    assert "field '$.items[5]' could not be found" in runtime_cause(
        "States.Array($.items[5])", {"items": [1]}
    )


def test_missing_context_path_is_reported_as_a_dollar_path() -> None:
    assert "field '$.Nope.Deep' could not be found in the input '{}'" in runtime_cause(
        "States.Array($$.Nope.Deep)", {}, {"State": {}}
    )


def test_present_null_argument_is_not_missing() -> None:
    assert ev("States.Format('{}', $.n)", {"n": None}) == "null"


@pytest.mark.parametrize(
    ("expression", "function"),
    [
        ("States.Format('{} {}', 1)", "States.Format"),
        ("States.Format('{}', 1, 2)", "States.Format"),
        ("States.Format('{', 1)", "States.Format"),
        ("States.Format(1)", "States.Format"),
        ("States.StringToJson('{oops')", "States.StringToJson"),
        ("States.StringToJson(1)", "States.StringToJson"),
        ("States.ArrayPartition('x', 2)", "States.ArrayPartition"),
        ("States.ArrayPartition(States.Array(1), 0)", "States.ArrayPartition"),
        ("States.ArrayPartition(States.Array(1), 0.49)", "States.ArrayPartition"),
        ("States.ArrayContains('x', 1)", "States.ArrayContains"),
        ("States.ArrayRange(0, 10, 0)", "States.ArrayRange"),
        ("States.ArrayRange(0, 1000, 1)", "States.ArrayRange"),
        ("States.ArrayRange('a', 5, 1)", "States.ArrayRange"),
        ("States.ArrayGetItem(States.Array(1, 2), 2)", "States.ArrayGetItem"),
        ("States.ArrayGetItem(States.Array(1, 2), -1)", "States.ArrayGetItem"),
        ("States.ArrayGetItem(States.Array(1, 2), 0.5)", "States.ArrayGetItem"),
        ("States.ArrayLength('abc')", "States.ArrayLength"),
        ("States.ArrayUnique(1)", "States.ArrayUnique"),
        ("States.Base64Encode(1)", "States.Base64Encode"),
        ("States.Base64Decode('not base64!')", "States.Base64Decode"),
        ("States.Hash('x', 'SHA-3')", "States.Hash"),
        ("States.Hash(1, 'MD5')", "States.Hash"),
        ("States.JsonMerge(States.StringToJson('{}'), States.StringToJson('{}'), true)", "States.JsonMerge"),
        ("States.JsonMerge(States.Array(1), States.StringToJson('{}'), false)", "States.JsonMerge"),
        ("States.MathRandom(1, 1)", "States.MathRandom"),
        ("States.MathRandom(10, 5)", "States.MathRandom"),
        ("States.MathRandom(1, 10, 'seed')", "States.MathRandom"),
        ("States.MathAdd(1, 'NOT A NUMBER')", "States.MathAdd"),
        ("States.MathAdd(2147483648, 1)", "States.MathAdd"),
        ("States.MathAdd(true, 1)", "States.MathAdd"),
        ("States.StringSplit(1, ',')", "States.StringSplit"),
    ],
)
def test_bad_arguments_fail_with_invalid_arguments(expression: str, function: str) -> None:
    assert runtime_cause(expression) == (
        f"The function '{expression}' had the following error: Invalid arguments in {function}"
    )


# --- functions beyond the recordings ------------------------------------------------------------


def test_format_renders_values_like_aws() -> None:
    data = {"o": {"a": 1, "b": [1, "x"], "c": None}, "l": [1, 2], "f": 1.0, "big": 1.5e20, "t": True}
    assert ev("States.Format('{}|{}|{}|{}|{}', $.o, $.l, $.f, $.big, $.t)", data) == (
        "{a=1, b=[1, x], c=null}|[1, 2]|1.0|1.5E20|true"
    )


def test_format_template_from_a_path() -> None:
    assert ev("States.Format($.t, $.n)", {"t": "Hello, my name is {}.", "n": "Arnav"}) == (
        "Hello, my name is Arnav."
    )


def test_array_range_descending_empty_and_limit() -> None:
    assert ev("States.ArrayRange(9, 0, -3)") == [9, 6, 3, 0]
    assert ev("States.ArrayRange(0, 5, -1)") == []
    assert len(ev("States.ArrayRange(1, 1000, 1)")) == 1000
    assert ev("States.ArrayRange(0.5, 2.4, 1)") == [1, 2]  # arguments rounded half up


def test_array_unique_keeps_first_occurrences_and_json_types() -> None:
    assert ev("States.ArrayUnique($.a)", {"a": [1, 2, 3, 3, 1, True, "1", {"k": [1]}, {"k": [1]}]}) == [
        1,
        2,
        3,
        True,
        "1",
        {"k": [1]},
    ]


def test_array_contains_does_not_confuse_true_with_one() -> None:
    assert ev("States.ArrayContains($.a, 1)", {"a": [True]}) is False


def test_base64_round_trip_utf8_and_limit() -> None:
    assert ev("States.Base64Decode(States.Base64Encode('héllo ✓'))") == "héllo ✓"
    limit = "a" * 10_000
    assert ev("States.Base64Encode($.s)", {"s": limit}).startswith("YWFh")
    assert "Invalid arguments in States.Base64Encode" in runtime_cause(
        "States.Base64Encode($.s)", {"s": limit + "a"}
    )


def test_json_merge_shallow_from_docs() -> None:
    data = {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}
    assert ev("States.JsonMerge($.json1, $.json2, false)", data) == {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}


def test_math_random_range_and_seed() -> None:
    values = {ev("States.MathRandom(1, 4)") for _ in range(200)}
    assert values <= {1, 2, 3} and len(values) > 1
    seeded = {ev("States.MathRandom(1, 1000, 42)") for _ in range(5)}
    assert len(seeded) == 1
    assert ev("States.MathRandom(1, 1000, 7)") in range(1, 1000)


def test_math_add_int32_bounds() -> None:
    assert ev("States.MathAdd(2147483647, 0)") == 2147483647
    assert ev("States.MathAdd(111, -1)") == 110


def test_string_split_edge_cases() -> None:
    assert ev("States.StringSplit('', ',')") == []
    assert ev("States.StringSplit('a-b', '')") == ["a-b"]
    assert ev("States.StringSplit('a]b^c', ']^')") == ["a", "b", "c"]


def test_uuid_is_a_version_4_uuid() -> None:
    value = ev("States.UUID()")
    assert uuid.UUID(value).version == 4
    assert value != ev("States.UUID()")


def test_json_to_string_keeps_non_ascii() -> None:
    assert ev("States.JsonToString($)", {"k": "é", "n": [1, 2.5]}) == '{"k":"é","n":[1,2.5]}'
