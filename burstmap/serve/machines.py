"""What the server serves from a cloud assembly: its state machines and its stacks with their outputs.

``LocalApp`` (burstmap.local.app.assembly) gives the definitions with tokens resolved and the outputs'
local values, merged across stacks. What DescribeStateMachine and DescribeStacks also need (a
machine's type and role, which stack each output belongs to, its description) is read here from the
stack templates the assembly's manifest names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burstmap.local.app.assembly import LocalApp
from burstmap.local.app.errors import AssemblyError
from burstmap.local.core.limits import LOCAL_ACCOUNT, LOCAL_REGION
from burstmap.serve.backend import StateMachineSpec

STACK_STATUS = "CREATE_COMPLETE"


@dataclass(frozen=True)
class StackOutput:
    key: str
    value: str
    description: str | None = None
    export_name: str | None = None


@dataclass(frozen=True)
class StackSpec:
    """One stack of the app as DescribeStacks shows it (deployed, locally, when the assembly was made)."""

    name: str
    stack_id: str
    creation_time: datetime
    description: str | None = None
    outputs: list[StackOutput] = field(default_factory=list)


def stack_id(name: str) -> str:
    """The stack id the assembly's resolver gives ``AWS::StackId``, so tokens and DescribeStacks agree."""
    return f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stack/{name}/local"


def load_served_app(app: LocalApp) -> tuple[list[StateMachineSpec], list[StackSpec]]:
    """The state machines and stacks of a loaded assembly, in template order."""
    templates = dict(_stack_templates(app.out_dir))
    created = datetime.fromtimestamp((app.out_dir / "manifest.json").stat().st_mtime, UTC)
    machines = []
    for machine in app.state_machines:
        template = templates.get(machine.stack, {})
        properties = template.get("Resources", {}).get(machine.logical_id, {}).get("Properties", {})
        unsupported = None
        try:
            app.check_runnable(machine)
        except AssemblyError as exc:
            unsupported = str(exc)
        machines.append(
            StateMachineSpec(
                arn=machine.arn,
                name=machine.name,
                definition=machine.definition,
                type=str(properties.get("StateMachineType", "STANDARD")),
                role_arn=_role_arn(machine.stack, template, properties.get("RoleArn"), machine.name),
                creation_date=created,
                stack=machine.stack,
                logical_id=machine.logical_id,
                unsupported=unsupported,
            )
        )
    stacks = [
        StackSpec(
            name=name,
            stack_id=stack_id(name),
            creation_time=created,
            description=template.get("Description"),
            outputs=_outputs(template, app.outputs),
        )
        for name, template in templates.items()
    ]
    return machines, stacks


def _stack_templates(assembly_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stack name, template) of every stack in the assembly, nested assemblies (Stages) included."""
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            name = properties.get("stackName") or artifact.get("displayName") or artifact_id
            yield name, json.loads((assembly_dir / properties["templateFile"]).read_text())
        elif artifact.get("type") == "cdk:cloud-assembly":
            yield from _stack_templates(assembly_dir / properties["directoryName"])


def _outputs(template: dict[str, Any], values: dict[str, Any]) -> list[StackOutput]:
    """The template's Outputs with their local values (LocalApp resolved them; keyed by output name)."""
    outputs = []
    for key, declared in template.get("Outputs", {}).items():
        if key not in values:
            continue
        value = values[key]
        export = (declared.get("Export") or {}).get("Name")
        outputs.append(
            StackOutput(
                key=key,
                value=value if isinstance(value, str) else json.dumps(value),
                description=declared.get("Description"),
                export_name=export if isinstance(export, str) else None,
            )
        )
    return outputs


def _role_arn(stack: str, template: dict[str, Any], role: Any, machine_name: str) -> str:
    """The machine's RoleArn: a literal, or a role of the same stack named as the assembly names it."""
    if isinstance(role, str):
        return role
    target = None
    if (
        isinstance(role, dict)
        and isinstance(role.get("Fn::GetAtt"), list)
        and role["Fn::GetAtt"][1:] == ["Arn"]
    ):
        target = role["Fn::GetAtt"][0]
    resource = template.get("Resources", {}).get(target) if isinstance(target, str) else None
    if resource is not None and resource.get("Type") == "AWS::IAM::Role":
        explicit = resource.get("Properties", {}).get("RoleName")
        name = explicit if isinstance(explicit, str) else f"{stack}-{target}"[:64]
        return f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{name}"
    return f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{machine_name}-role"
