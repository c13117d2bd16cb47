"""Reference paths, payload templates, ResultPath, InputPath/OutputPath (JSONPath query language)."""

from __future__ import annotations

import pytest

from burstmap.local.core.errors import DefinitionError, StateRuntimeError, StatesError
from burstmap.local.query.jsonpath import (
    NOT_GIVEN,
    apply_input_path,
    read_path,
    validate_reference_path,
    write_result,
)
from burstmap.local.query.payload_template import resolve_template

DATA = {"a": {"b": [10, 20, {"c": "deep"}]}, "users": [{"s": 0, "n": "x"}, {"s": 1, "n": "y"}], "k'ey": 1}
CONTEXT = {"Execution": {"Input": {"v": 1}, "Name": "run-1"}, "State": {"Name": "S"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DATA),
        ("$.a.b[0]", 10),
        ("$.a.b[-1].c", "deep"),
        ("$['a']['b'][2]['c']", "deep"),
        ('$["a"].b[1]', 20),
        ("$['k\\'ey']", 1),
        ("$.users[?(@.s == 1)]", [{"s": 1, "n": "y"}]),
        ("$.users[*].n", ["x", "y"]),
        ("$.users[1:]", [{"s": 1, "n": "y"}]),
        ("$.missing[*]", []),
    ],
)
def test_read_path_definite_and_indefinite(path: str, expected: object) -> None:
    assert read_path(path, DATA, CONTEXT) == expected


def test_double_dollar_reads_the_context_object() -> None:
    assert read_path("$$.Execution.Input.v", DATA, CONTEXT) == 1
    assert read_path("$$", DATA, CONTEXT) is CONTEXT


def test_missing_last_field_uses_aws_wording() -> None:
    with pytest.raises(StateRuntimeError) as raised:
        read_path("$.nope", DATA, CONTEXT)
    assert raised.value.error == "States.Runtime"
    assert raised.value.detail == "Invalid path '$.nope' : No results for path: $['nope']"


def test_missing_intermediate_field_names_the_prefix() -> None:
    with pytest.raises(StateRuntimeError) as raised:
        read_path("$.no.such.path", DATA, CONTEXT)
    assert raised.value.detail == "Invalid path '$.no.such.path' : Missing property in path $['no']"


def test_template_resolves_dollar_keys_at_every_depth_and_keeps_literals() -> None:
    template = {
        "literal": "$.a",
        "value.$": "$.a.b[0]",
        "nested": {"ctx.$": "$$.State.Name", "list": [{"x.$": "$['k\\'ey']"}, 3]},
    }
    assert resolve_template(template, DATA, CONTEXT) == {
        "literal": "$.a",
        "value": 10,
        "nested": {"ctx": "S", "list": [{"x": 1}, 3]},
    }


def test_template_missing_path_names_the_field_and_quotes_the_input() -> None:
    with pytest.raises(StateRuntimeError) as raised:
        resolve_template({"v.$": "$.none"}, {"x": 1}, CONTEXT)
    assert raised.value.detail == (
        "The JSONPath '$.none' specified for the field 'v.$' could not be found in the input '{\"x\":1}'"
    )


def test_result_path_null_keeps_input_and_dollar_replaces_it() -> None:
    assert write_result({"a": 1}, {"r": 2}, None) == {"a": 1}
    assert write_result({"a": 1}, {"r": 2}, "$") == {"r": 2}


def test_result_path_creates_nested_objects_without_mutating_the_input() -> None:
    data = {"a": {"keep": 1}}
    assert write_result(data, 5, "$.a.b.c") == {"a": {"keep": 1, "b": {"c": 5}}}
    assert data == {"a": {"keep": 1}}


def test_result_path_into_a_non_object_fails_with_result_path_match_failure() -> None:
    with pytest.raises(StatesError) as raised:
        write_result("text", 1, "$.x")
    assert raised.value.error == "States.ResultPathMatchFailure"
    with pytest.raises(StatesError):
        write_result({"a": 3}, 1, "$.a.b")


def test_input_path_absent_keeps_input_and_null_gives_empty_object() -> None:
    assert apply_input_path({"a": 1}, NOT_GIVEN, CONTEXT) == {"a": 1}
    assert apply_input_path({"a": 1}, None, CONTEXT) == {}
    assert apply_input_path({"a": 1}, "$.a", CONTEXT) == 1


def test_result_path_must_be_definite_at_load_time() -> None:
    validate_reference_path("$.a[0].b", "ResultPath", "S")
    with pytest.raises(DefinitionError, match="definite"):
        validate_reference_path("$.a[*]", "ResultPath", "S")
    with pytest.raises(DefinitionError):
        validate_reference_path("$$.State", "ResultPath", "S")
