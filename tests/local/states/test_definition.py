"""Load-time checks of a definition (burstmap.local.states.definition and each state type's own):
fields the engine does not run are refused by name, what AWS rejects is a DefinitionError, in
both query languages and inside branches and item processors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from burstmap.local import DefinitionError, FakeClock, UnsupportedFeature, execute, load_definition
from tests.local.engine_support import ARN, chain, one


def machine(*states: tuple[str, dict[str, Any]], language: str = "JSONata") -> dict[str, Any]:
    return chain(*states, language=language)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"Type": "Task", "Resource": ARN, "HeartbeatSeconds": 5},
            "not supported locally: 'HeartbeatSeconds' in state 'S'",
        ),
        ({"Type": "Task", "Resource": ARN, "Credentials": {}}, "'Credentials' in state 'S'"),
        (
            {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage"},
            "'Resource arn:aws:states:::sqs:sendMessage'",
        ),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "f"},
            },
            "lambda:invoke.waitForTaskToken",
        ),
        (
            {"Type": "Task", "QueryLanguage": "JSONata", "Resource": ARN, "Credentials": {}},
            "'Credentials' in state 'S'",
        ),
        ({"Type": "Pass", "Assign": {"x": 1}, "Catch": []}, "'Catch' in state 'S'"),
    ],
)
def test_unsupported_fields_are_refused_by_name(state: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedFeature, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_definition(one(state))


def test_fields_inside_branches_and_item_processors_are_checked_too() -> None:
    inner = {
        "StartAt": "Compute",
        "States": {"Compute": {"Type": "Task", "Resource": ARN, "HeartbeatSeconds": 1, "End": True}},
    }
    with pytest.raises(UnsupportedFeature, match="'HeartbeatSeconds' in state 'Compute'"):
        load_definition(one({"Type": "Parallel", "Branches": [inner]}))
    with pytest.raises(UnsupportedFeature, match="'HeartbeatSeconds' in state 'Compute'"):
        load_definition(one({"Type": "Map", "ItemProcessor": inner}))


def test_broken_transitions_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="names no state"):
        load_definition({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}})
    with pytest.raises(DefinitionError, match="Next or"):
        load_definition({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})


def test_definition_as_json_text() -> None:
    assert execute(json.dumps(one({"Type": "Pass"})), {"a": 1}, clock=FakeClock()).output == {"a": 1}


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


TRANSFORMING_DATA_PAGE = "https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html"
CATCH_ALL = {"ErrorEquals": ["States.ALL"], "Next": "Done"}


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ({"Type": "Pass", "Output": "{% $states.result %}"}, "Output"),
        ({"Type": "Task", "Resource": ARN, "Arguments": {"x": "{% $states.result.x %}"}}, "Arguments/x"),
        ({"Type": "Task", "Resource": ARN, "Output": "{% $states.errorOutput %}"}, "Output"),
        (
            {"Type": "Task", "Resource": ARN, "Catch": [{**CATCH_ALL, "Output": "{% $states.result %}"}]},
            "Catch[0]/Output",
        ),
        (
            {"Type": "Map", "Items": [1], "ItemSelector": {"r": "{% $states.result %}"}, "ItemProcessor": {}},
            "ItemSelector/r",
        ),
    ],
)
def test_states_result_and_error_output_only_where_they_exist(state: dict[str, Any], field: str) -> None:
    """Guide, "Reserved variable: $states" (transforming-data.html): `$states.result` in the Output
    and Assign of Task, Parallel and Map states, `$states.errorOutput` in a Catch's Assign or
    Output; "Attempting to access $states.result or $states.errorOutput in fields and states where
    they are not accessible will be caught at creation" of the state machine."""
    if state["Type"] == "Map":
        state["ItemProcessor"] = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    definition = machine(("S", {**state, "Next": "Done"}), ("Done", {"Type": "Succeed"}))
    with pytest.raises(DefinitionError, match=re.escape(f"in field '{field}' of state 'S' uses $states.")):
        load_definition(definition)


def test_states_result_and_error_output_where_they_exist_load() -> None:
    """transforming-data.html: the fields where `$states.result` / `$states.errorOutput` exist."""
    task = {
        "Type": "Task",
        "Resource": ARN,
        "Output": {"r": "{% $states.result %}"},
        "Assign": {"r": "{% $states.result %}"},
        "Catch": [
            {**CATCH_ALL, "Output": "{% $states.errorOutput %}", "Assign": {"e": "{% $states.errorOutput %}"}}
        ],
    }
    load_definition(machine(("S", task), ("Done", {"Type": "Succeed"})))
