"""Helpers for the CDK tests: fast apps, templates, the state machine definition as plain ASL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: Context that skips bundling (only where a PythonFunction would need Docker).
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def fast_app(context: dict[str, Any] | None = None) -> cdk.App:
    """An App without the built-in CloudFormation validator (one dedicated test keeps it on)."""
    return cdk.App(builtin_cloud_formation_validation=False, context=context or {})


def inline_function(scope: Construct, construct_id: str) -> lambda_.Function:
    """A user's compute function that needs no asset."""
    return lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_13,
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        handler="index.handler",
    )


def template_of(stack: cdk.Stack) -> dict[str, Any]:
    return assertions.Template.from_stack(stack).to_json()


def _placeholder(part: Any) -> str:
    """A token inside the definition, as a readable placeholder: ``${Ref:X}``, ``${GetAtt:X.Arn}``."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return "${Ref:" + part["Ref"] + "}"
    if "Fn::GetAtt" in part:
        return "${GetAtt:" + ".".join(part["Fn::GetAtt"]) + "}"
    raise AssertionError(f"unexpected token in DefinitionString: {part!r}")


def resolve_definition(definition: Any) -> dict[str, Any]:
    """A DefinitionString (plain or ``Fn::Join``) parsed into ASL, tokens as placeholders."""
    if isinstance(definition, dict):
        separator, parts = definition["Fn::Join"]
        definition = separator.join(_placeholder(part) for part in parts)
    return json.loads(definition)


def state_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> parsed ASL of every state machine in the template."""
    return {
        logical_id: resolve_definition(resource["Properties"]["DefinitionString"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }


def only_state_machine(template: dict[str, Any]) -> dict[str, Any]:
    (definition,) = state_machines(template).values()
    return definition


def logical_id(stack: cdk.Stack, construct: Construct) -> str:
    """The logical id of an L2's CloudFormation resource."""
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return stack.resolve(child.logical_id)


def statements_of(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to one role (through AWS::IAM::Policy resources)."""
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = resource["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def role_of(stack: cdk.Stack, function: lambda_.Function) -> str:
    assert function.role is not None
    return logical_id(stack, function.role)


def iter_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones (Map ItemProcessor) included."""
    for name, state in definition["States"].items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from iter_states(processor)


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]
