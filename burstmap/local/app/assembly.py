"""Cloud assembly -> what the local engine runs: definitions, functions, buckets, with tokens resolved.

The engine reads what CDK synthesized, not the construct, so a job that runs locally runs the very
definition that would be deployed. ``load_assembly`` reads ``manifest.json`` and the stack templates and
resolves their CloudFormation tokens (tokens.py); synthesis and its reuse are in synth.py.

Of each Python function it keeps what its workers need to see what they would on Lambda: the runtime and
architecture, the code folder, each layer's content, and whether its construct bundles third-party packages
from its entry folder (a PythonFunction, known from the construct tree; a BurstmapFunction, known from its
``burstmap:dependencies`` metadata), which a local run then installs (services/lambda_dependencies.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burstmap.local.app.construct_tree import PYTHON_FUNCTION, construct_types, resource_construct
from burstmap.local.app.errors import AssemblyError, read_json
from burstmap.local.app.tokens import TemplateResolver, bundled, bundling_skipped

# CloudFormation's defaults for AWS::Lambda::Function.
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128
DEFAULT_ARCHITECTURE = "x86_64"
BURSTMAP_FUNCTION_METADATA = "burstmap:dependencies"
"""The CloudFormation metadata key of a BurstmapFunction (its entry folder's packages are bundled)."""


@dataclass(frozen=True)
class LocalFunction:
    """One Lambda function of the assembly, as the local runtime will run it."""

    logical_id: str
    stack: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    environment: dict[str, str]
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    architecture: str = DEFAULT_ARCHITECTURE
    layers: list[Path] = field(default_factory=list)
    """Each layer's content (what Lambda extracts to ``/opt``), in the function's order."""
    bundling: str | None = None
    """``PythonFunction`` or ``BurstmapFunction`` when the construct installs the packages its entry folder's
    dependency file names and the code folder is that entry (a local synth skips the bundling); else None."""

    @property
    def code_paths(self) -> list[Path]:
        """The code folder, then the layers' import folders as Lambda orders them (a later layer first,
        ``python/lib/<runtime>/site-packages`` before ``python/``)."""
        layers = list(reversed(self.layers))
        return [
            self.code_dir,
            *(layer / "python" / "lib" / self.runtime / "site-packages" for layer in layers),
            *(layer / "python" for layer in layers),
        ]


@dataclass(frozen=True)
class LocalBucket:
    logical_id: str
    stack: str
    name: str


@dataclass(frozen=True)
class LocalStateMachine:
    logical_id: str
    stack: str
    name: str
    arn: str
    definition: dict[str, Any]


@dataclass
class LocalApp:
    """Everything the engine needs from a cloud assembly, tokens resolved to local values."""

    out_dir: Path
    state_machines: list[LocalStateMachine]
    functions: list[LocalFunction]
    buckets: list[LocalBucket]
    outputs: dict[str, Any] = field(default_factory=dict)
    skipped_functions: dict[str, str] = field(default_factory=dict)  # ARN -> why it cannot run locally

    def state_machine(self, logical_id: str | None = None) -> LocalStateMachine:
        """The state machine with this logical id (or ``Stack/LogicalId``), or the only one."""
        if logical_id is None:
            if len(self.state_machines) == 1:
                return self.state_machines[0]
            found = ", ".join(f"{sm.stack}/{sm.logical_id}" for sm in self.state_machines) or "none"
            raise AssemblyError(
                f"the assembly in {self.out_dir} has {len(self.state_machines)} state machines ({found}): "
                "name one by its logical id"
            )
        for sm in self.state_machines:
            if logical_id in (sm.logical_id, f"{sm.stack}/{sm.logical_id}", sm.name, sm.arn):
                return sm
        found = ", ".join(f"{sm.stack}/{sm.logical_id}" for sm in self.state_machines) or "none"
        raise AssemblyError(f"no state machine {logical_id!r} in {self.out_dir}; found: {found}")

    def check_runnable(self, state_machine: LocalStateMachine) -> None:
        """Refuse a definition that invokes a function the local runtime cannot run (e.g. Node.js)."""
        text = json.dumps(state_machine.definition)
        for arn, reason in self.skipped_functions.items():
            if arn in text:
                raise AssemblyError(
                    f"state machine {state_machine.logical_id} invokes {arn}, "
                    f"which cannot run locally: {reason}"
                )


def load_assembly(out_dir: Path) -> LocalApp:
    """Read a cloud assembly directory (manifest.json and its stack templates) into a LocalApp."""
    out_dir = Path(out_dir).resolve()
    app = LocalApp(out_dir=out_dir, state_machines=[], functions=[], buckets=[])
    stacks = list(_stack_templates(out_dir))
    if not stacks:
        raise AssemblyError(
            f"no CloudFormation stack in the cloud assembly {out_dir}: synthesize the app first"
        )
    constructs = construct_types(out_dir)
    for stack_name, template_path in stacks:
        _load_stack(app, stack_name, template_path, constructs)
    return app


def _stack_templates(assembly_dir: Path) -> Iterator[tuple[str, Path]]:
    manifest_path = assembly_dir / "manifest.json"
    if not manifest_path.is_file():
        raise AssemblyError(f"{manifest_path} is missing: synthesize the app first (burstmap run does)")
    manifest = read_json(manifest_path)
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        props = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            name = props.get("stackName") or artifact.get("displayName") or artifact_id
            yield name, assembly_dir / props["templateFile"]
        elif artifact.get("type") == "cdk:cloud-assembly":  # a Stage: a nested assembly
            yield from _stack_templates(assembly_dir / props["directoryName"])


def _load_stack(app: LocalApp, stack: str, template_path: Path, constructs: dict[str, str]) -> None:
    template = read_json(template_path)
    resolver = TemplateResolver(stack, template, template_path.parent)
    resources: dict[str, Any] = template.get("Resources", {})
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind == "AWS::S3::Bucket":
            app.buckets.append(LocalBucket(logical_id, stack, resolver.ref(logical_id, logical_id, "Ref")))
        elif kind == "AWS::Lambda::Function":
            _load_function(app, resolver, logical_id, resource, constructs)
        elif kind == "AWS::StepFunctions::StateMachine":
            app.state_machines.append(_load_state_machine(resolver, logical_id, resource))
    for name, output in template.get("Outputs", {}).items():
        app.outputs[name] = resolver.resolve(output.get("Value"), f"Outputs.{name}", "Value")


def _load_function(
    app: LocalApp,
    resolver: TemplateResolver,
    logical_id: str,
    resource: dict[str, Any],
    constructs: dict[str, str],
) -> None:
    props = resource.get("Properties", {})
    name = resolver.ref(logical_id, logical_id, "Ref")
    arn = resolver.get_att(logical_id, "Arn", logical_id, "Arn")
    runtime = str(props.get("Runtime", ""))
    if props.get("PackageType") == "Image" or not runtime.startswith("python"):
        app.skipped_functions[arn] = (
            f"its runtime is {runtime or props.get('PackageType', 'unknown')!r}; "
            "the local runtime runs Python functions only"
        )
        return
    bundling = _bundling(resource, constructs)
    if bundling is None and bundling_skipped(resource):
        app.skipped_functions[arn] = (
            "its code is built by CDK bundling, which a local synth skips, so what it would deploy is not "
            "known here (not supported locally): use a PythonFunction or a BurstmapFunction (their "
            "requirements are installed locally), or Code.from_asset on a folder"
        )
        return
    if bundling is not None and bundled(resource):
        bundling = None  # a synth that ran the bundling: the packages are in the asset already
    code_dir = resolver.code_directory(logical_id, resource)
    layers = [
        resolver.layer_content(layer, logical_id, f"Layers[{index}]")
        for index, layer in enumerate(props.get("Layers", []))
    ]
    architectures = props.get("Architectures") or [DEFAULT_ARCHITECTURE]
    environment = resolver.resolve(
        props.get("Environment", {}).get("Variables", {}), logical_id, "Environment.Variables"
    )
    app.functions.append(
        LocalFunction(
            logical_id=logical_id,
            stack=resolver.stack,
            name=name,
            arn=arn,
            handler=str(resolver.resolve(props.get("Handler"), logical_id, "Handler")),
            runtime=runtime,
            code_dir=code_dir,
            environment={key: _env_string(value) for key, value in environment.items()},
            timeout_seconds=float(props.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
            memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
            architecture=str(architectures[0]),
            layers=layers,
            bundling=bundling,
        )
    )


def _bundling(resource: dict[str, Any], constructs: dict[str, str]) -> str | None:
    """The construct that bundles this function's packages from its entry folder, if any."""
    if BURSTMAP_FUNCTION_METADATA in (resource.get("Metadata") or {}):
        return "BurstmapFunction"
    path = resource_construct(resource)
    if path is not None and constructs.get(path) == PYTHON_FUNCTION:
        return "PythonFunction"
    return None


def _env_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _load_state_machine(
    resolver: TemplateResolver, logical_id: str, resource: dict[str, Any]
) -> LocalStateMachine:
    props = resource.get("Properties", {})
    if "DefinitionString" in props:
        text = resolver.resolve(props["DefinitionString"], logical_id, "DefinitionString")
        try:
            definition = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise AssemblyError(
                f"{resolver.stack}/{logical_id} DefinitionString is not JSON after resolving tokens ({exc})"
            ) from exc
    elif "Definition" in props:
        definition = resolver.resolve(props["Definition"], logical_id, "Definition")
    else:
        raise AssemblyError(
            f"{resolver.stack}/{logical_id} has no inline definition (DefinitionS3Location is not read "
            "locally): build it with DefinitionBody.from_chainable or from_string"
        )
    substitutions = resolver.resolve(
        props.get("DefinitionSubstitutions", {}), logical_id, "DefinitionSubstitutions"
    )
    if substitutions:
        definition = _substitute(definition, {k: str(v) for k, v in substitutions.items()})
    return LocalStateMachine(
        logical_id=logical_id,
        stack=resolver.stack,
        name=resolver.state_machine_name(logical_id),
        arn=resolver.get_att(logical_id, "Arn", logical_id, "Arn"),
        definition=definition,
    )


def _substitute(value: Any, substitutions: dict[str, str]) -> Any:
    """DefinitionSubstitutions: ``${key}`` inside any string of the definition."""
    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: substitutions.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_substitute(v, substitutions) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, substitutions): _substitute(v, substitutions) for k, v in value.items()}
    return value
