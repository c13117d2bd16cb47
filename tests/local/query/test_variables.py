"""Workflow variables: Assign in both query languages, `$name` in JSONPath paths, scopes, timing."""

from __future__ import annotations

from typing import Any

import pytest

from burstmap.local import DefinitionError, UnsupportedFeature, load_definition
from burstmap.local.core.errors import StatesError
from burstmap.local.query.variables import UndefinedVariable, VariableScope, current_scope, using_scope
from tests.local.engine_support import ARN, chain, run


def test_jsonpath_assign_then_variables_in_paths_parameters_and_items_path() -> None:
    definition = chain(
        ("Init", {"Type": "Pass", "Assign": {"xs.$": "$.items", "cfg": {"k": [7, 8]}, "n": 2}}),
        (
            "Use",
            {
                "Type": "Pass",
                "Parameters": {"n.$": "$n", "second.$": "$cfg.k[1]", "all.$": "$xs[*]", "lit": "$n"},
            },
        ),
        (
            "Map",
            {
                "Type": "Map",
                "ItemsPath": "$xs",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "ResultPath": "$.mapped",
            },
        ),
    )
    result = run(definition, {"items": [1, 2]})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"n": 2, "second": 8, "all": [1, 2], "lit": "$n", "mapped": [1, 2]}


def test_assign_reads_the_values_the_state_was_entered_with() -> None:
    definition = chain(
        ("A", {"Type": "Pass", "Assign": {"a": 1, "b": 2}}),
        ("Swap", {"Type": "Pass", "Assign": {"a.$": "$b", "b.$": "$a"}, "Parameters": {"seen.$": "$a"}}),
        ("Show", {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b"}, "ResultPath": "$.vars"}),
    )
    assert run(definition).output == {"seen": 1, "vars": {"a": 2, "b": 1}}


def test_jsonpath_assign_dollar_is_the_result_after_result_selector() -> None:
    task = {
        "Type": "Task",
        "Resource": ARN,
        "ResultSelector": {"doubled.$": "States.MathAdd($.v, $.v)"},
        "ResultPath": None,
        "Assign": {"got.$": "$.doubled", "input.$": "$$.Execution.Input.v"},
    }
    definition = chain(
        ("T", task), ("Show", {"Type": "Pass", "Parameters": {"got.$": "$got", "in.$": "$input"}})
    )
    assert run(definition, {"v": 3}).output == {"got": 6, "in": 3}


def test_catch_and_choice_rule_assign_in_jsonpath() -> None:
    def boom(event: Any) -> Any:
        raise RuntimeError("bad")

    task = {
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:111111111111:function:boom",
        "Catch": [
            {"ErrorEquals": ["States.ALL"], "Assign": {"err.$": "$.Error"}, "ResultPath": None, "Next": "C"}
        ],
        "Next": "C",
    }
    choice = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Assign": {"path": "yes"}, "Next": "Show"}],
        "Default": "Show",
        "Assign": {"path": "default"},
    }
    show = {"Type": "Pass", "Parameters": {"err.$": "$err", "path.$": "$path"}, "End": True}
    definition = chain(("T", task), ("C", choice), ("Show", show))
    assert run(definition, {"go": True}, boom=boom).output == {"err": "RuntimeError", "path": "yes"}
    assert run(definition, {"go": False}, boom=boom).output == {"err": "RuntimeError", "path": "default"}


def test_branches_read_outer_variables_but_their_assignments_stay_inside() -> None:
    """A branch or iteration reads the outer scope's variables; what it assigns stays in its own
    scope (an inner scope may not reassign an outer name: test_inner_scope_cannot_reassign...)."""
    branch = {
        "StartAt": "B1",
        "States": {
            "B1": {"Type": "Pass", "Assign": {"inner": 1, "copy.$": "$outer"}, "Next": "B2"},
            "B2": {"Type": "Pass", "Parameters": {"outer.$": "$copy", "inner.$": "$inner"}, "End": True},
        },
    }
    definition = chain(
        ("Init", {"Type": "Pass", "Assign": {"outer": "kept"}}),
        ("Par", {"Type": "Parallel", "Branches": [branch], "ResultPath": "$.branch"}),
        ("Map", {"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": branch, "ResultPath": "$.iterations"}),
        (
            "Show",
            {"Type": "Pass", "Parameters": {"outer.$": "$outer", "b.$": "$.branch", "m.$": "$.iterations"}},
        ),
    )
    output = run(definition, {"xs": [0, 1]}).output
    assert output == {
        "outer": "kept",
        "b": [{"outer": "kept", "inner": 1}],
        "m": [{"outer": "kept", "inner": 1}] * 2,
    }
    # a later state of the outer scope cannot read what a branch assigned
    leak = chain(
        ("Init", {"Type": "Pass", "Assign": {"outer": "kept"}}),
        ("Par", {"Type": "Parallel", "Branches": [branch]}),
        ("Read", {"Type": "Pass", "Parameters": {"inner.$": "$inner"}}),
    )
    result = run(leak)
    assert result.error == "States.Runtime" and "'$inner' is not defined" in result.cause


def test_distributed_children_cannot_read_outer_variables_but_item_selector_can() -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$secret"}, "End": True}},
    }
    map_state = {
        "Type": "Map",
        "ItemsPath": "$.xs",
        "ItemProcessor": processor,
        "ToleratedFailurePercentage": 100,
    }
    definition = chain(("Init", {"Type": "Pass", "Assign": {"secret": 5}}), ("M", map_state))
    output = run(definition, {"xs": [1]}).output
    assert output[0]["Status"] == "FAILED" and "'$secret' is not defined" in output[0]["Cause"]
    processor["States"]["P"] = {"Type": "Pass", "End": True}
    map_state["ItemSelector"] = {"v.$": "$secret", "i.$": "$$.Map.Item.Value"}
    assert run(definition, {"xs": [1]}).output == [{"v": 5, "i": 1}]


def test_variables_flow_between_jsonpath_and_jsonata_states() -> None:
    definition = chain(
        ("Init", {"Type": "Pass", "Assign": {"n.$": "$.n"}}),
        ("Double", {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"n": "{% $n * 2 %}"}}),
        ("Show", {"Type": "Pass", "Parameters": {"n.$": "$n"}}),
    )
    assert run(definition, {"n": 21}).output == {"n": 42}


def test_jsonata_output_and_assign_both_see_the_entry_values() -> None:
    definition = chain(
        ("A", {"Type": "Pass", "Assign": {"x": 1}}),
        ("B", {"Type": "Pass", "Assign": {"x": "{% $x + 1 %}", "y": "{% $x %}"}, "Output": "{% $x %}"}),
        ("C", {"Type": "Pass", "Output": {"x": "{% $x %}", "y": "{% $y %}", "out": "{% $states.input %}"}}),
        language="JSONata",
    )
    assert run(definition).output == {"x": 2, "y": 1, "out": 1}


def test_an_undefined_variable_in_jsonata_is_undefined_in_its_field() -> None:
    definition = chain(("A", {"Type": "Pass", "Output": {"e": "{% $never %}"}}), language="JSONata")
    result = run(definition)
    assert result.error == "States.QueryEvaluationError"
    assert result.cause.endswith(
        "The JSONata expression '$never' specified for the field 'Output/e' returned nothing (undefined)."
    )


def test_wait_and_choice_assign() -> None:
    definition = chain(
        ("W", {"Type": "Wait", "Seconds": 0, "Assign": {"w.$": "$.a"}}),
        ("Show", {"Type": "Pass", "Parameters": {"w.$": "$w"}}),
    )
    assert run(definition, {"a": "x"}).output == {"w": "x"}


@pytest.mark.parametrize(
    ("assign", "message"),
    [
        ({"1x": 1}, "not a valid variable name"),
        ({"a-b.$": "$.a"}, "not a valid variable name"),
        ({"states": 1}, "reserved"),
        ([1], "must be an object"),
    ],
)
def test_bad_assign_is_refused_at_load(assign: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        load_definition(chain(("S", {"Type": "Pass", "Assign": assign})))


def test_scope_lookup_shadowing_and_context_variable() -> None:
    outer = VariableScope()
    outer.assign({"a": 1, "b": 2})
    inner = outer.child()
    inner.assign({"b": 3})
    assert (inner.lookup("a"), inner.lookup("b"), outer.lookup("b")) == (1, 3, 2)
    assert inner.visible() == {"a": 1, "b": 3}
    with pytest.raises(UndefinedVariable):
        outer.lookup("c")
    with using_scope(inner):
        assert current_scope() is inner
    assert current_scope() is not inner


VARIABLES_PAGE = "https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html"


def test_variables_in_intrinsic_function_arguments() -> None:
    """Guide, "Using variables in JSONPath states" (workflow-variables.html): "In JSONPath fields that
    accept intrinsic functions, variables can be used in the arguments, for example
    States.Format('The order number is {}', $order.number)" -- in Parameters, ResultSelector, Assign
    and ItemSelector alike, nested calls included."""
    task = {
        "Type": "Task",
        "Resource": ARN,
        "Parameters": {"n.$": "States.MathAdd($order.number, 1)"},
        "ResultSelector": {"both.$": "States.Array($.n, $order.number)"},
        "Assign": {"message.$": "States.Format('Hello {}', $customer.name)"},
    }
    definition = chain(
        (
            "Init",
            {"Type": "Pass", "Assign": {"order": {"number": 7}, "customer": {"name": "Ana"}, "xs": [3, 4]}},
        ),
        (
            "Format",
            {
                "Type": "Pass",
                "Parameters": {"m.$": "States.Format('The order number is {}', $order.number)"},
                "ResultPath": "$.format",
            },
        ),
        ("T", dict(task, ResultPath="$.task")),
        (
            "Map",
            {
                "Type": "Map",
                "ItemsPath": "$xs",
                "ItemSelector": {
                    "sum.$": "States.MathAdd(States.MathAdd($$.Map.Item.Value, $order.number), 0)"
                },
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "ResultPath": "$.map",
            },
        ),
        (
            "Show",
            {
                "Type": "Pass",
                "Parameters": {
                    "f.$": "$.format.m",
                    "t.$": "$.task",
                    "m.$": "$.map",
                    "msg.$": "$message",
                    "len.$": "States.ArrayLength($xs)",
                },
            },
        ),
    )
    result = run(definition)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {
        "f": "The order number is 7",
        "t": {"both": [8, 7]},
        "m": [{"sum": 10}, {"sum": 11}],
        "msg": "Hello Ana",
        "len": 2,
    }


def test_an_undefined_variable_in_an_intrinsic_fails_naming_the_variable() -> None:
    """workflow-variables.html: a reference to a variable that was never assigned fails at run time."""
    definition = chain(("S", {"Type": "Pass", "Parameters": {"m.$": "States.Format('{}', $never.x)"}}))
    result = run(definition)
    assert result.error == "States.Runtime"
    assert "States.Format('{}', $never.x)" in result.cause and "'$never' is not defined" in result.cause


def test_variables_in_choice_variable_and_path_operands() -> None:
    """workflow-variables.html: "You can reference a variable in any field that accepts a JSONpath
    expression ... with the exception of ResultPath" -- a Choice rule's Variable and its ...Path
    operand included (the guess/answer loop below ends once $guess was reassigned)."""
    definition = {
        "StartAt": "Setup",
        "States": {
            "Setup": {
                "Type": "Pass",
                "Assign": {"guess": "the_guess", "answer": "the_answer"},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$guess", "StringEqualsPath": "$answer", "Next": "Correct"},
                    {"Variable": "$missing", "IsPresent": True, "Next": "Correct"},
                ],
                "Default": "Wrong",
            },
            "Correct": {"Type": "Pass", "Parameters": {"state": "CORRECT", "guess.$": "$guess"}, "End": True},
            "Wrong": {"Type": "Pass", "Assign": {"guess.$": "$answer"}, "Next": "Check"},
        },
    }
    result = run(definition)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"state": "CORRECT", "guess": "the_answer"}


def test_variables_in_every_other_jsonpath_field() -> None:
    """workflow-variables.html: InputPath, OutputPath, ItemsPath, MaxConcurrencyPath, SecondsPath,
    TimestampPath, ErrorPath and CausePath all read `$name` paths."""
    definition = chain(
        (
            "Init",
            {
                "Type": "Pass",
                "Assign": {
                    "doc": {"xs": [1, 2]},
                    "limit": 1,
                    "wait": 0,
                    "at": "2024-11-06T09:42:03Z",
                    "err": "Boom",
                    "why": "because",
                },
            },
        ),
        ("In", {"Type": "Pass", "InputPath": "$doc", "OutputPath": "$doc.xs"}),
        (
            "Map",
            {
                "Type": "Map",
                "ItemsPath": "$doc.xs",
                "MaxConcurrencyPath": "$limit",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            },
        ),
        ("W1", {"Type": "Wait", "SecondsPath": "$wait"}),
        ("W2", {"Type": "Wait", "TimestampPath": "$at"}),
        ("F", {"Type": "Fail", "ErrorPath": "$err", "CausePath": "States.Format('{} {}', $why, $doc.xs[0])"}),
    )
    result = run(definition)
    assert (result.error, result.cause) == ("Boom", "because 1")


def test_variables_cannot_be_used_in_result_path() -> None:
    """workflow-variables.html: "Variables cannot be used in ResultPath" -- refused at load time."""
    with pytest.raises(DefinitionError, match="cannot be used in ResultPath"):
        load_definition(chain(("S", {"Type": "Pass", "Assign": {"a": 1}, "ResultPath": "$a"})))


@pytest.mark.parametrize("kind", ["Parallel", "Map", "DistributedMap", "Nested"])
def test_inner_scope_cannot_reassign_a_variable_of_an_outer_scope(kind: str) -> None:
    """Guide, "Variable scope" (workflow-variables.html): "a variable assigned in an inner scope
    cannot have the same name as one assigned in an outer scope. For example, if the top-level scope
    assigns a value to a variable called myVariable, then no other scope (inside a Map, Parallel)
    can assign to myVariable as well." Refused when the definition is loaded, whichever of the two
    comes first, and whatever assigns it inside (a state, a Choice rule, a Catch clause)."""
    inner = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.go", "IsPresent": True, "Assign": {"shared.$": "$"}, "Next": "E"}
                ],
                "Default": "E",
            },
            "E": {"Type": "Succeed"},
        },
    }
    nested: dict[str, Any] = {
        "Parallel": {"Type": "Parallel", "Branches": [inner]},
        "Map": {"Type": "Map", "ItemProcessor": inner},
        "DistributedMap": {
            "Type": "Map",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, **inner},
        },
        "Nested": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": inner, "End": True}}}
            ],
        },
    }[kind]
    definition = chain(("Outer", nested), ("Later", {"Type": "Pass", "Assign": {"shared": 1}}))
    with pytest.raises(
        DefinitionError, match=r"variable '\$shared' is assigned in state 'C' .* state 'Later'"
    ):
        load_definition(definition)


def test_sibling_scopes_and_a_catch_of_the_outer_state_may_share_names() -> None:
    """workflow-variables.html: branches do not see each other ("they do not have access to variable
    values from other concurrent branches"), so two branches may assign the same name; a Catch on a
    Parallel "can assign values to variables in the outer scope, that is, the scope in which the
    Parallel/Map state exists"."""
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "Assign": {"mine.$": "$"}, "End": True}}}
    parallel = {
        "Type": "Parallel",
        "Branches": [branch, branch],
        "Assign": {"done": True},
        "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"done": False}, "Next": "Show"}],
    }
    definition = chain(("P", parallel), ("Show", {"Type": "Pass", "Parameters": {"done.$": "$done"}}))
    assert run(definition, {"x": 1}).output == {"done": True}


def test_variable_names_are_unicode_identifiers_of_at_most_80_characters() -> None:
    """Guide, "Variable name syntax" (workflow-variables.html): names follow Unicode identifier rules
    (ID_Start, then ID_Continue) and "The maximum length of a variable name is 80"; "you cannot
    assign a value to a part of a variable" ("x.y")."""
    longest = "v" * 80
    definition = chain(
        ("A", {"Type": "Pass", "Assign": {"café": 1, "名前": "n", longest: True}}),
        ("B", {"Type": "Pass", "Parameters": {"c.$": "$café", "n.$": "$名前", "l.$": "$" + longest}}),
        ("C", {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% [$states.input, $café + 1] %}"}),
    )
    assert run(definition).output == [{"c": 1, "n": "n", "l": True}, 2]
    for bad in ("v" * 81, "x.y", "9lives", "with space"):
        with pytest.raises(DefinitionError, match="not a valid variable name"):
            load_definition(chain(("S", {"Type": "Pass", "Assign": {bad: 1}})))


@pytest.mark.parametrize("kind", ["Succeed", "Fail"])
@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_succeed_and_fail_states_cannot_assign(kind: str, language: str) -> None:
    """workflow-variables.html: "The Assign field in ASL is available at the top level of each state
    (except Succeed and Fail)" -- a definition AWS rejects, not a local limitation."""
    definition = {
        "QueryLanguage": language,
        "StartAt": "S",
        "States": {"S": {"Type": kind, "Assign": {"a": 1}}},
    }
    with pytest.raises(DefinitionError, match=f"a {kind} state cannot have Assign") as refused:
        load_definition(definition)
    assert not isinstance(refused.value, UnsupportedFeature)


# Developer guide, "Passing data between states with variables", section "Limits":
# https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html#variable-limits
KIB = 1024
DOUBLED = "States.Format('{}{}', $.x, $.x)"  # a value twice the input's string, past what an input may be


def test_one_variable_past_256_kib_fails_the_state() -> None:
    definition = chain(("Big", {"Type": "Pass", "Assign": {"big.$": DOUBLED}}))

    result = run(definition, {"x": "a" * (129 * KIB)})

    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert "'big'" in result.cause and "262144 bytes" in result.cause


def test_one_assign_may_hold_256_kib_in_all_and_two_states_may_hold_more() -> None:
    halves = {"x.$": "$.x", "y.$": "$.x"}  # two variables of about 150 KiB each
    together = chain(("Both", {"Type": "Pass", "Assign": halves}))
    apart = chain(
        ("First", {"Type": "Pass", "Assign": {"x.$": "$.x"}}),
        ("Second", {"Type": "Pass", "Assign": {"y.$": "$.x"}}),
        ("Show", {"Type": "Pass", "Parameters": {"same.$": "States.ArrayLength(States.Array($x, $y))"}}),
    )
    data = {"x": "a" * (150 * KIB)}

    refused = run(together, data)
    assert (refused.status, refused.error) == ("FAILED", "States.DataLimitExceeded")
    assert "one Assign" in refused.cause
    assert run(apart, data).output == {"same": 2}


def test_an_executions_variables_may_hold_10_mib_in_all() -> None:
    """40 variables of 250 KiB fit (10,240,000 bytes), a 41st passes 10 MiB; assigning again adds nothing."""

    def assigning(count: int) -> list[tuple[str, dict[str, Any]]]:
        return [(f"V{i}", {"Type": "Pass", "Assign": {f"v{i}.$": DOUBLED}}) for i in range(count)]

    again = [(f"Again{i}", {"Type": "Pass", "Assign": {"v0.$": DOUBLED}}) for i in range(5)]
    data = {"x": "a" * (125 * KIB - 1)}

    assert run(chain(*assigning(40), *again), data).status == "SUCCEEDED"

    one_more = run(chain(*assigning(41)), data)
    assert (one_more.status, one_more.error) == ("FAILED", "States.DataLimitExceeded")
    assert "10485760 bytes" in one_more.cause


def test_jsonata_assign_has_the_same_limit() -> None:
    definition = chain(
        ("Big", {"Type": "Pass", "Assign": {"big": "{% $states.input.x & $states.input.x %}"}}),
        language="JSONata",
    )

    result = run(definition, {"x": "a" * (129 * KIB)})

    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


def test_a_refused_assign_stores_nothing() -> None:
    scope = VariableScope()
    scope.assign({"small": 1})
    with pytest.raises(StatesError, match="^States.DataLimitExceeded: .*one Assign"):
        scope.assign({"a": "a" * (200 * KIB), "small": "b" * (100 * KIB)})
    assert scope.visible() == {"small": 1}
