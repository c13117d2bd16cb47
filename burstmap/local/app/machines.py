"""The app's state machines by construct path, and the settings of a job's compute, from the assembly.

An app may hold several jobs (two BurstCompute in one stack): a run names one by its construct path
(``MyStack/JobB``, what the CDK app wrote), its logical id (``JobBStateMachine1A2B3C4D``, alone or as
``MyStack/JobBStateMachine1A2B3C4D``), its state machine name or ARN, or its stack's name when that
stack holds no other. Paths come from each resource's
``aws:cdk:path`` metadata (synthesized with path metadata on, as the CDK CLI does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstmap.local.app.assembly import LocalApp, LocalFunction, LocalStateMachine
from burstmap.local.app.errors import AssemblyError, read_json

#: CloudFormation's defaults for AWS::Lambda::Function.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_ARCHITECTURE = "x86_64"


def machine_paths(app: LocalApp) -> dict[str, LocalStateMachine]:
    """Each state machine by the path a person names it by: its construct (``MyStack/JobB`` for a
    BurstCompute, whose state machine is ``MyStack/JobB/StateMachine``), in the app's order."""
    resource_paths = {
        (stack, logical_id): _cdk_path(resource)
        for stack, template in stack_templates(app.out_dir)
        for logical_id, resource in (template.get("Resources") or {}).items()
    }
    named: dict[str, LocalStateMachine] = {}
    for machine in app.state_machines:
        path = resource_paths.get((machine.stack, machine.logical_id)) or ""
        path = path.removesuffix("/Resource") or f"{machine.stack}/{machine.logical_id}"
        parent, _, last = path.rpartition("/")
        if last == "StateMachine" and parent.count("/") >= 1:  # a construct's own state machine
            path = parent
        named[path] = machine
    return named


def select_state_machine(app: LocalApp, wanted: str | None) -> tuple[str, LocalStateMachine]:
    """The state machine ``wanted`` names (or the app's only one), with its construct path.

    AssemblyError, in one line that lists the app's state machines by path, when it names none or
    several, or when nothing is named and the app has more than one.
    """
    named = machine_paths(app)
    listing = ", ".join(named) or "none"
    if wanted is None:
        if len(named) == 1:
            return next(iter(named.items()))
        if not named:
            raise AssemblyError(f"the app in {_app_dir(app)} has no state machine (its stacks define none)")
        first = next(iter(named))
        raise AssemblyError(
            f"the app in {_app_dir(app)} has {len(named)} state machines ({listing}): choose one with "
            f"--state-machine (state_machine= in Python), e.g. --state-machine {first}"
        )
    key = wanted.strip().strip("/")
    found = {path: machine for path, machine in named.items() if key in _names_of(path, machine)}
    if len(found) == 1:
        return next(iter(found.items()))
    if found:
        raise AssemblyError(f"--state-machine {wanted} names several state machines: {', '.join(found)}")
    raise AssemblyError(f"no state machine {wanted!r} in the app in {_app_dir(app)}; it has: {listing}")


def _names_of(path: str, machine: LocalStateMachine) -> tuple[str, ...]:
    """Every name a state machine answers to."""
    return (
        path,
        f"{path}/StateMachine",
        machine.logical_id,
        f"{machine.stack}/{machine.logical_id}",
        machine.name,
        machine.arn,
        machine.arn.rsplit(":", 1)[-1],  # the name AWS knows it by (StateMachineName, when set)
        machine.stack,  # a stack with one job; with several, naming it lists them
    )


@dataclass(frozen=True)
class ComputeSettings:
    """What a job's Distributed Map and its compute function are set to, as deployed."""

    batch_size: int
    """``ItemBatcher.MaxItemsPerBatch`` (1 without an ItemBatcher)."""
    max_concurrency: int | None
    """``MaxConcurrency`` (None: no limit, AWS runs up to 10,000 children)."""
    function: str | None
    """The compute function's construct path (None when the map's task is not a Lambda function here)."""
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    architecture: str = DEFAULT_ARCHITECTURE


def compute_settings(app: LocalApp, machine: LocalStateMachine) -> ComputeSettings:
    """The first Distributed Map of ``machine``: its batch size and concurrency, and the memory, timeout
    and architecture of the Lambda function its item processor invokes. AssemblyError without one."""
    state = _first_distributed_map(machine.definition)
    if state is None:
        raise AssemblyError(
            f"state machine {machine.stack}/{machine.logical_id} has no Distributed Map state: "
            "it is not a burstmap job"
        )
    batcher = state.get("ItemBatcher") or {}
    batch_size = batcher.get("MaxItemsPerBatch") if isinstance(batcher, dict) else None
    concurrency = state.get("MaxConcurrency")
    function = _invoked_function(app, state.get("ItemProcessor") or {})
    base = ComputeSettings(
        batch_size=batch_size if isinstance(batch_size, int) and batch_size >= 1 else 1,
        max_concurrency=concurrency if isinstance(concurrency, int) and concurrency > 0 else None,
        function=None,
    )
    if function is None:
        return base
    resource = _resource(app, function.stack, function.logical_id)
    props = resource.get("Properties") or {}
    architectures = props.get("Architectures") or [DEFAULT_ARCHITECTURE]
    return ComputeSettings(
        batch_size=base.batch_size,
        max_concurrency=base.max_concurrency,
        function=_cdk_path(resource).removesuffix("/Resource") or f"{function.stack}/{function.logical_id}",
        memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
        timeout_seconds=float(props.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
        architecture=str(architectures[0]),
    )


def stack_templates(out_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stack name, template) of every stack in a cloud assembly, nested assemblies (Stages) included."""
    manifest = read_json(out_dir / "manifest.json")
    for artifact_id, artifact in (manifest.get("artifacts") or {}).items():
        props = artifact.get("properties") or {}
        if artifact.get("type") == "aws:cloudformation:stack":
            name = props.get("stackName") or artifact.get("displayName") or artifact_id
            yield name, read_json(out_dir / props["templateFile"])
        elif artifact.get("type") == "cdk:cloud-assembly":
            yield from stack_templates(out_dir / props["directoryName"])


def _resource(app: LocalApp, stack: str, logical_id: str) -> dict[str, Any]:
    for name, template in stack_templates(app.out_dir):
        if name == stack:
            return (template.get("Resources") or {}).get(logical_id) or {}
    return {}


def _cdk_path(resource: Any) -> str:
    metadata = resource.get("Metadata") if isinstance(resource, dict) else None
    path = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
    return path if isinstance(path, str) else ""


def _first_distributed_map(definition: dict[str, Any]) -> dict[str, Any] | None:
    for state in (definition.get("States") or {}).values():
        if not isinstance(state, dict) or state.get("Type") != "Map":
            continue
        processor = state.get("ItemProcessor") or {}
        if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
            return state
    return None


def _invoked_function(app: LocalApp, processor: dict[str, Any]) -> LocalFunction | None:
    """The app's function that the first Lambda task of an item processor invokes."""
    by_reference = {reference: fn for fn in app.functions for reference in (fn.arn, fn.name)}
    for state in (processor.get("States") or {}).values():
        if not isinstance(state, dict) or state.get("Type") != "Task":
            continue
        resource = state.get("Resource")
        parameters = state.get("Parameters") or state.get("Arguments") or {}
        target = parameters.get("FunctionName") if resource == "arn:aws:states:::lambda:invoke" else resource
        if isinstance(target, str):
            base = target.split(":$")[0]  # a qualified ARN (":$LATEST") names the same function
            if base in by_reference:
                return by_reference[base]
    return None


def _app_dir(app: LocalApp) -> Path:
    """The app directory an assembly belongs to (``<app>/cdk.out[/...]``), for messages."""
    for parent in (app.out_dir, *app.out_dir.parents):
        if parent.name == "cdk.out":
            return parent.parent
    return app.out_dir
