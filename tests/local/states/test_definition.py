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
