"""Cloud assembly -> what the local engine runs: definitions, functions, buckets, with tokens resolved.

The engine reads what CDK synthesized, not the construct, so a job that runs locally runs the very
definition that would be deployed. ``synthesize`` runs the app the way the CDK CLI does (``python app.py``
with ``CDK_OUTDIR`` and ``CDK_CONTEXT_JSON``; no node CLI needed) and skips the work when ``cdk.out`` is
up to date. ``load_assembly`` reads ``manifest.json`` and the stack templates and resolves the
CloudFormation tokens (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ...) to deterministic local
values: function ARNs in account 111111111111 / us-east-1, lowercase bucket names, pseudo parameters.
A token that cannot be resolved locally is an ``UnresolvableToken`` naming the resource and property.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from burstmap.local.core.limits import LOCAL_ACCOUNT, LOCAL_PARTITION, LOCAL_REGION, LOCAL_URL_SUFFIX

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.local.services.lambda_runtime import FunctionSpec


STAMP_FILE = ".burstmap-synth.json"
LOCK_FILE = ".burstmap-synth.lock"
SYNTH_LOG_FILE = "burstmap-synth.log"

# What the CDK CLI adds to every synth: asset metadata is how we find a function's code directory.
CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:disable-stack-trace": True,
}

# Inputs whose change makes a synthesized assembly stale (relative to the app directory).
INPUT_FILES = ("app.py", "cdk.json", "cdk.context.json")
INPUT_DIRS = ("infra", "lambdas", "burstmap")
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "cdk.out", "node_modules"}

# CloudFormation's defaults for AWS::Lambda::Function.
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128


class AssemblyError(Exception):
    """A cloud assembly that cannot be synthesized or run locally; the message says what to do."""


class SynthesisError(AssemblyError):
    """``python app.py`` failed or produced no cloud assembly."""


class UnresolvableToken(AssemblyError):
    """A CloudFormation token that has no local value, named by stack, resource and property."""

    def __init__(self, stack: str, resource: str, prop: str, token: Any, reason: str) -> None:
        self.stack = stack
        self.resource = resource
        self.property = prop
        self.token = token
        super().__init__(
            f"cannot resolve {json.dumps(token)} in {stack}/{resource} property {prop} locally: {reason}. "
            "The local engine resolves Ref/Fn::GetAtt of Lambda functions, layers, S3 buckets, state "
            "machines, IAM roles and log groups of the same stack; use a literal value (or an environment "
            "variable set in the app) for anything else."
        )


# ---------------------------------------------------------------------------------------------- synthesis


def synthesize(
    app_dir: Path,
    *,
    context: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    validate: bool = False,
    force: bool = False,
    watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS,
) -> Path:
    """Synthesize the CDK app in ``app_dir`` into ``out_dir`` (default ``app_dir/cdk.out``); return out_dir.

    Re-synthesis is skipped when the stamp file shows the same context, the assembly is unchanged since,
    and no input file (app.py, cdk.json, infra/, lambdas/, burstmap/) was modified after that synth began.
    ``watch`` lists those inputs relative to ``app_dir``; "burstmap" also watches the installed package,
    which the runtime layer copies. ``validate`` keeps CDK's built-in CloudFormation validator on (about
    4 s a synth); a local run does not need it, ``cdk synth`` does it before a deploy.
    """
    app_dir = Path(app_dir).resolve()
    if not (app_dir / "app.py").is_file() and not (app_dir / "cdk.json").is_file():
        raise SynthesisError(
            f"no CDK app in {app_dir} (neither app.py nor cdk.json): run from the project directory "
            "or pass its path (app_dir=...)"
        )
    out_dir = Path(out_dir).resolve() if out_dir is not None else app_dir / "cdk.out"
    out_dir.mkdir(parents=True, exist_ok=True)
    full_context = _synth_context(app_dir, context or {})
    with _locked(out_dir / LOCK_FILE):
        if not force and is_up_to_date(app_dir, out_dir, full_context, watch):
            return out_dir
        (out_dir / STAMP_FILE).unlink(missing_ok=True)
        started = time.time()
        _run_app(app_dir, out_dir, full_context, validate=validate)
        manifest = out_dir / "manifest.json"
        if not manifest.is_file():
            raise SynthesisError(
                f"the app in {app_dir} ran but wrote no {manifest}: does app.py call app.synth()?"
            )
        stamp = {"context": full_context, "started": started, "manifest_sha256": _sha256(manifest)}
        (out_dir / STAMP_FILE).write_text(json.dumps(stamp, sort_keys=True))
    return out_dir


def is_up_to_date(
    app_dir: Path,
    out_dir: Path,
    full_context: dict[str, Any],
    watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS,
) -> bool:
    """Whether ``out_dir`` holds this app's assembly for exactly this context, newer than every input."""
    stamp_path = out_dir / STAMP_FILE
    manifest = out_dir / "manifest.json"
    if not stamp_path.is_file() or not manifest.is_file():
        return False
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("context") != json.loads(json.dumps(full_context)):
        return False
    if stamp.get("manifest_sha256") != _sha256(manifest):  # e.g. `cdk synth` wrote it since
        return False
    started = float(stamp.get("started", 0))
    return all(path.stat().st_mtime < started for path in input_files(app_dir, watch))


def input_files(app_dir: Path, watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS) -> Iterator[Path]:
    """Every file whose change can change the synthesized assembly (and burstmap's own package)."""
    for name in watch:
        if (app_dir / name).is_file():
            yield app_dir / name
    roots = [app_dir / name for name in watch if (app_dir / name).is_dir()]
    if "burstmap" in watch:  # the runtime layer copies the installed package, wherever it lives
        with contextlib.suppress(FileNotFoundError):
            from burstmap.cdk.assets import lambdas_dir, package_dir

            roots += [package_dir(), lambdas_dir()]
    # The local engine (burstmap/local) never changes what the app synthesizes: editing it keeps cdk.out.
    seen: set[Path] = {(root / "local").resolve() for root in roots if root.name == "burstmap"}
    for root in roots:
        root = root.resolve()
        if root in seen or not root.is_dir():
            continue
        seen.add(root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [
                d
                for d in dirnames
                if d not in _IGNORED_PARTS
                and not d.endswith(".egg-info")
                and Path(dirpath, d).resolve() not in seen
            ]
            for filename in filenames:
                if not filename.endswith((".pyc", ".pyo")):
                    yield Path(dirpath, filename)


def _synth_context(app_dir: Path, context: dict[str, Any]) -> dict[str, Any]:
    """cdk.json's context, then cdk.context.json, then the caller's, then the CLI's own keys, like the CLI."""
    merged: dict[str, Any] = {}
    cdk_json = _read_json(app_dir / "cdk.json")
    merged.update(cdk_json.get("context", {}) if isinstance(cdk_json, dict) else {})
    cached = _read_json(app_dir / "cdk.context.json")
    merged.update(cached if isinstance(cached, dict) else {})
    merged.update(context)
    merged.update(CLI_CONTEXT)
    return merged


def _app_command(app_dir: Path) -> list[str]:
    """The app command from cdk.json, run with this interpreter when it is a Python command."""
    cdk_json = _read_json(app_dir / "cdk.json")
    app = cdk_json.get("app") if isinstance(cdk_json, dict) else None
    if not app:
        return [sys.executable, "app.py"]
    argv = shlex.split(app)
    if re.fullmatch(r"python[0-9.]*", Path(argv[0]).name):
        return [sys.executable, *argv[1:]]
    return argv


def _run_app(app_dir: Path, out_dir: Path, full_context: dict[str, Any], *, validate: bool) -> None:
    env = dict(os.environ)
    env.update(
        {
            "CDK_OUTDIR": str(out_dir),
            "CDK_CONTEXT_JSON": json.dumps(full_context),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
    )
    if not validate:
        env["CDK_VALIDATION"] = "false"
    command = _app_command(app_dir)
    try:
        proc = subprocess.run(command, cwd=app_dir, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SynthesisError(f"cannot run the CDK app ({shlex.join(command)}) in {app_dir}: {exc}") from exc
    if proc.returncode != 0:
        # One line for the user (the app's last line of output is usually its exception); the whole
        # output, traceback included, goes to a log file the message names.
        log = out_dir / SYNTH_LOG_FILE
        log.write_text(f"$ {shlex.join(command)}\n{proc.stdout}{proc.stderr}")
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        raise SynthesisError(
            f"synthesizing the CDK app failed ({shlex.join(command)} in {app_dir}, exit {proc.returncode}): "
            f"{last} -- fix the app and retry; its full output is in {log}"
        )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One synth at a time per output directory (parallel tests and CLI runs share cdk.out)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise AssemblyError(f"{path} is not valid JSON ({exc}): fix or delete it") from exc


# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class LocalFunction:
    """One Lambda function of the assembly, as the local runtime will run it."""

    logical_id: str
    stack: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_paths: list[Path]
    environment: dict[str, str]
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB

    def spec(self) -> FunctionSpec:
        """The runtime's FunctionSpec (imported here: the runtime module is optional for reading)."""
        from burstmap.local.services.lambda_runtime import FunctionSpec

        return FunctionSpec(
            name=self.name,
            handler=self.handler,
            code_paths=list(self.code_paths),
            environment=dict(self.environment),
            timeout_seconds=float(self.timeout_seconds),
            memory_mb=int(self.memory_mb),
        )


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

    def function_specs(self) -> list[FunctionSpec]:
        return [fn.spec() for fn in self.functions]

    def check_runnable(self, state_machine: LocalStateMachine) -> None:
        """Refuse a definition that invokes a function the local runtime cannot run (e.g. Node.js)."""
        text = json.dumps(state_machine.definition)
        for arn, reason in self.skipped_functions.items():
            if arn in text:
                raise AssemblyError(
                    f"state machine {state_machine.logical_id} invokes {arn}, "
                    f"which cannot run locally: {reason}"
                )


# ---------------------------------------------------------------------------------------------- loading


def load_assembly(out_dir: Path) -> LocalApp:
    """Read a cloud assembly directory (manifest.json and its stack templates) into a LocalApp."""
    out_dir = Path(out_dir).resolve()
    app = LocalApp(out_dir=out_dir, state_machines=[], functions=[], buckets=[])
    stacks = list(_stack_templates(out_dir))
    if not stacks:
        raise AssemblyError(
            f"no CloudFormation stack in the cloud assembly {out_dir}: synthesize the app first"
        )
    for stack_name, template_path in stacks:
        _load_stack(app, stack_name, template_path)
    return app


def _stack_templates(assembly_dir: Path) -> Iterator[tuple[str, Path]]:
    manifest_path = assembly_dir / "manifest.json"
    if not manifest_path.is_file():
        raise AssemblyError(f"{manifest_path} is missing: synthesize the app first (burstmap run does)")
    manifest = _read_json(manifest_path)
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        props = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            name = props.get("stackName") or artifact.get("displayName") or artifact_id
            yield name, assembly_dir / props["templateFile"]
        elif artifact.get("type") == "cdk:cloud-assembly":  # a Stage: a nested assembly
            yield from _stack_templates(assembly_dir / props["directoryName"])


def _load_stack(app: LocalApp, stack: str, template_path: Path) -> None:
    template = _read_json(template_path)
    resolver = _Resolver(stack, template, template_path.parent)
    resources: dict[str, Any] = template.get("Resources", {})
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind == "AWS::S3::Bucket":
            app.buckets.append(LocalBucket(logical_id, stack, resolver.ref(logical_id, logical_id, "Ref")))
        elif kind == "AWS::Lambda::Function":
            _load_function(app, resolver, logical_id, resource)
        elif kind == "AWS::StepFunctions::StateMachine":
            app.state_machines.append(_load_state_machine(resolver, logical_id, resource))
    for name, output in template.get("Outputs", {}).items():
        app.outputs[name] = resolver.resolve(output.get("Value"), f"Outputs.{name}", "Value")


def _load_function(app: LocalApp, resolver: _Resolver, logical_id: str, resource: dict[str, Any]) -> None:
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
    code_dir = resolver.code_directory(logical_id, resource)
    layer_paths: list[Path] = []
    for index, layer in enumerate(props.get("Layers", [])):
        layer_paths += resolver.layer_python_paths(layer, logical_id, f"Layers[{index}]", runtime)
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
            code_paths=[code_dir, *layer_paths],
            environment={key: _env_string(value) for key, value in environment.items()},
            timeout_seconds=float(props.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
            memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
        )
    )


def _env_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _load_state_machine(resolver: _Resolver, logical_id: str, resource: dict[str, Any]) -> LocalStateMachine:
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
        name=resolver.physical_name(logical_id),
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


# ---------------------------------------------------------------------------------------------- tokens


class _Resolver:
    """Resolves the intrinsic functions of one stack template to local values."""

    def __init__(self, stack: str, template: dict[str, Any], assembly_dir: Path) -> None:
        self.stack = stack
        self.template = template
        self.assembly_dir = assembly_dir
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})
        self.mappings: dict[str, Any] = template.get("Mappings", {})
        self._asset_files: dict[str, Any] | None = None

    # -- names

    def physical_name(self, logical_id: str) -> str:
        """The deterministic local name CloudFormation would generate (``Stack-LogicalId``)."""
        return f"{self.stack}-{logical_id}"[:64]

    def bucket_name(self, logical_id: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get("BucketName")
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, "BucketName"))
        name = re.sub(r"[^a-z0-9-]", "-", f"{self.stack}-{logical_id}".lower()).strip("-")
        return name[:63].rstrip("-")

    def function_name(self, logical_id: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get("FunctionName")
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, "FunctionName"))
        return self.physical_name(logical_id)

    def _named(self, logical_id: str, prop: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get(prop)
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, prop))
        return self.physical_name(logical_id)

    # -- Ref and Fn::GetAtt

    def ref(self, target: str, where: str, prop: str) -> Any:
        pseudo = {
            "AWS::Partition": LOCAL_PARTITION,
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::URLSuffix": LOCAL_URL_SUFFIX,
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stack/{self.stack}/local",
        }
        if target in pseudo:
            return pseudo[target]
        if target in self.parameters:
            parameter = self.parameters[target]
            if "Default" in parameter:
                return parameter["Default"]
            raise UnresolvableToken(
                self.stack, where, prop, {"Ref": target}, f"parameter {target} has no default value"
            )
        resource = self.resources.get(target)
        if resource is None:
            raise UnresolvableToken(
                self.stack, where, prop, {"Ref": target}, f"no resource {target} in the stack"
            )
        kind = resource.get("Type")
        if kind == "AWS::S3::Bucket":
            return self.bucket_name(target)
        if kind == "AWS::Lambda::Function":
            return self.function_name(target)
        if kind == "AWS::Lambda::LayerVersion":
            name = self._named(target, "LayerName")
            return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:layer:{name}:1"
        if kind == "AWS::StepFunctions::StateMachine":
            return self.get_att(target, "Arn", where, prop)
        if kind == "AWS::IAM::Role":
            return self._named(target, "RoleName")
        if kind == "AWS::Logs::LogGroup":
            return self._named(target, "LogGroupName")
        raise UnresolvableToken(
            self.stack, where, prop, {"Ref": target}, f"{target} is a {kind}, which has no local value"
        )

    def get_att(self, target: str, attribute: str, where: str, prop: str) -> Any:
        token = {"Fn::GetAtt": [target, attribute]}
        resource = self.resources.get(target)
        if resource is None:
            raise UnresolvableToken(self.stack, where, prop, token, f"no resource {target} in the stack")
        kind = resource.get("Type")
        values: dict[str, Any] = {}
        if kind == "AWS::Lambda::Function":
            name = self.function_name(target)
            values = {"Arn": f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"}
        elif kind == "AWS::S3::Bucket":
            name = self.bucket_name(target)
            values = {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{LOCAL_REGION}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{LOCAL_REGION}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{LOCAL_REGION}.amazonaws.com",
            }
        elif kind == "AWS::StepFunctions::StateMachine":
            name = self._named(target, "StateMachineName")
            values = {
                "Arn": f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{name}",
                "Name": name,
            }
        elif kind == "AWS::IAM::Role":
            name = self._named(target, "RoleName")
            values = {
                "Arn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{name}",
                "RoleId": f"AROALOCAL{target.upper()}",
            }
        elif kind == "AWS::Logs::LogGroup":
            name = self._named(target, "LogGroupName")
            values = {"Arn": f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:log-group:{name}:*"}
        if attribute not in values:
            raise UnresolvableToken(
                self.stack, where, prop, token, f"attribute {attribute} of a {kind} has no local value"
            )
        return values[attribute]

    # -- the intrinsic functions

    def resolve(self, value: Any, where: str, prop: str) -> Any:
        """``value`` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(v, where, prop) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg, where, prop)
            if key == "Fn::GetAtt":
                target, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(target, self.resolve(attribute, where, prop), where, prop)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(
                    self._string(p, where, prop, value) for p in self.resolve(parts, where, prop)
                )
            if key == "Fn::Sub":
                return self._sub(arg, where, prop)
            if key == "Fn::Select":
                index, items = self.resolve(arg, where, prop)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self.resolve(arg, where, prop)
                return str(text).split(separator)
            if key == "Fn::FindInMap":
                name, top, second = self.resolve(arg, where, prop)[:3]
                try:
                    return self.mappings[name][top][second]
                except KeyError:
                    raise UnresolvableToken(
                        self.stack, where, prop, value, f"mapping {name} has no {top}.{second}"
                    ) from None
            if key == "Fn::Base64":
                import base64

                return base64.b64encode(str(self.resolve(arg, where, prop)).encode()).decode()
            if key.startswith("Fn::") or key == "Condition":
                raise UnresolvableToken(self.stack, where, prop, value, f"{key} is not evaluated locally")
        return {k: self.resolve(v, where, f"{prop}.{k}") for k, v in value.items()}

    def _string(self, part: Any, where: str, prop: str, token: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, bool | int | float):
            return json.dumps(part)
        raise UnresolvableToken(
            self.stack, where, prop, token, f"a joined part resolved to {part!r}, not a string"
        )

    def _sub(self, arg: Any, where: str, prop: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], where, prop))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                target, attribute = name.split(".", 1)
                return str(self.get_att(target, attribute, where, prop))
            return str(self.ref(name, where, prop))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- assets

    def code_directory(self, logical_id: str, resource: dict[str, Any]) -> Path:
        """The directory holding the function's code, from asset metadata, assets.json or inline code."""
        props = resource.get("Properties", {})
        code = props.get("Code", {})
        if "ZipFile" in code:  # Code.from_inline: Lambda stores it as index.py
            directory = self.assembly_dir / "burstmap-inline" / logical_id
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "index.py").write_text(
                str(self.resolve(code["ZipFile"], logical_id, "Code.ZipFile"))
            )
            return directory
        return self._asset_directory(logical_id, resource, "Code")

    def layer_python_paths(self, layer: Any, function_id: str, prop: str, runtime: str) -> list[Path]:
        """A layer's ``python/`` (and ``python/lib/<runtime>/site-packages``), as Lambda puts on sys.path."""
        target = layer.get("Ref") if isinstance(layer, dict) else None
        resource = self.resources.get(target) if isinstance(target, str) else None
        if resource is None or resource.get("Type") != "AWS::Lambda::LayerVersion":
            raise UnresolvableToken(
                self.stack,
                function_id,
                prop,
                layer,
                "only layers defined in the same stack from a local asset can run locally",
            )
        root = self._asset_directory(target, resource, "Content")
        paths = [root / "python"]
        site_packages = root / "python" / "lib" / runtime / "site-packages"
        if site_packages.is_dir():
            paths.append(site_packages)
        return paths

    def _asset_directory(self, logical_id: str, resource: dict[str, Any], prop: str) -> Path:
        metadata = resource.get("Metadata", {})
        relative = (
            metadata.get("aws:asset:path") if metadata.get("aws:asset:property", prop) == prop else None
        )
        if relative is None:  # synthesized without asset metadata: find the asset by its S3 key
            key = resource.get("Properties", {}).get(prop, {}).get("S3Key")
            entry = self._assets().get(str(key).split(".", 1)[0]) if isinstance(key, str) else None
            relative = entry["source"]["path"] if entry else None
        if relative is None:
            raise UnresolvableToken(
                self.stack,
                logical_id,
                prop,
                resource.get("Properties", {}).get(prop),
                "no local asset directory for it (not built with Code.from_asset?)",
            )
        directory = (self.assembly_dir / relative).resolve()
        if not directory.is_dir():
            raise AssemblyError(
                f"{self.stack}/{logical_id} {prop}: asset {directory} is not a directory (a zip file asset "
                "cannot be run locally; point Code.from_asset at a directory)"
            )
        return directory

    def _assets(self) -> dict[str, Any]:
        if self._asset_files is None:
            self._asset_files = {}
            for path in self.assembly_dir.glob("*.assets.json"):
                self._asset_files.update(_read_json(path).get("files", {}))
        return self._asset_files
