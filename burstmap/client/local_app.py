"""The app a local job runs: synthesized, read from its cloud assembly, and turned into what the local
services run (FunctionSpecs); for an app over S3 objects, where its items come from (ObjectsSource) and
the input objects uploaded there."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstmap.client.job_input import JobInputError
from burstmap.local.app.assembly import LocalApp, LocalFunction, load_assembly
from burstmap.local.app.machines import ComputeSettings, compute_settings, select_state_machine
from burstmap.local.app.synth import Synthesis, synthesize
from burstmap.local.services.lambda_runtime import FunctionSpec

LIST_OBJECTS_V2 = "arn:aws:states:::s3:listObjectsV2"


#: Where a local run synthesizes an app: beside the assembly ``cdk synth`` writes, never over it (a local
#: synth skips bundling, so its assets are not what a deploy needs).
LOCAL_ASSEMBLY_DIR = Path("cdk.out") / "burstmap-local"
#: CDK context of a local synth: skip all asset bundling, so no app ever needs Docker to run locally. A
#: bundled asset (a PythonFunction's) is then its source folder, and its requirements are installed for
#: this machine when the function runs.
LOCAL_CONTEXT = {"aws:cdk:bundling-stacks": []}


def prepare_app(
    app_dir: Path,
    *,
    force_synth: bool = False,
    synth_timeout: float | None = None,
    on_synth: Callable[[Synthesis], None] | None = None,
) -> LocalApp:
    """Synthesize the app for a local run (or reuse its up-to-date assembly) and read its cloud assembly.

    ``on_synth`` hears whether it was synthesized and why (``Synthesis.describe()`` says it in a line).
    """
    app_dir = Path(app_dir).resolve()
    synthesis = synthesize(
        app_dir,
        context=LOCAL_CONTEXT,
        out_dir=app_dir / LOCAL_ASSEMBLY_DIR,
        force=force_synth,
        timeout=synth_timeout,
    )
    if on_synth is not None:
        on_synth(synthesis)
    return load_assembly(synthesis.out_dir)


@dataclass(frozen=True)
class AppJob:
    """One state machine of an app, as `burstmap plan --app-dir` prices it."""

    app_dir: Path
    path: str
    """Its construct path (``MyStack/JobB``)."""
    definition: dict[str, Any]
    settings: ComputeSettings

    def plan_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``plan.plan_job`` that the app decides."""
        compute = f" (compute {self.settings.function})" if self.settings.function else ""
        return {
            "batch_size": self.settings.batch_size,
            "max_concurrency": self.settings.max_concurrency,
            "memory_mb": self.settings.memory_mb,
            "architecture": self.settings.architecture,
            "timeout_seconds": self.settings.timeout_seconds,
            "source": f"{self.path} in {self.app_dir}{compute}",
        }


def app_job(
    app_dir: Path,
    state_machine: str | None = None,
    *,
    force_synth: bool = False,
    on_synth: Callable[[Synthesis], None] | None = None,
) -> AppJob:
    """The chosen state machine of the app (synthesized or reused), its definition and compute settings."""
    app = prepare_app(app_dir, force_synth=force_synth, on_synth=on_synth)
    path, machine = select_state_machine(app, state_machine)
    return AppJob(Path(app_dir), path, machine.definition, compute_settings(app, machine))


def function_spec(function: LocalFunction) -> FunctionSpec:
    """The local Lambda service's view of one of the app's functions: its code, layers, runtime and
    architecture, and the entry folder whose packages its bundling would install (PythonFunction,
    BurstmapFunction)."""
    return FunctionSpec(
        name=function.name,
        handler=function.handler,
        code_paths=[function.code_dir],
        environment=dict(function.environment),
        timeout_seconds=float(function.timeout_seconds),
        memory_mb=int(function.memory_mb),
        runtime=function.runtime,
        architecture=function.architecture,
        layers=list(function.layers),
        bundled_requirements=function.code_dir if function.bundling is not None else None,
    )


def function_specs(app: LocalApp) -> list[FunctionSpec]:
    return [function_spec(function) for function in app.functions]


@dataclass(frozen=True)
class ObjectsSource:
    """Where a job over S3 objects (BurstCompute ``input_prefix``) lists its items and its compute writes."""

    bucket: str
    input_prefix: str
    """The ItemReader's ``Prefix``, e.g. ``"input/"``."""
    output_prefix: str | None = None
    """The ``output_prefix`` the construct puts in every item, e.g. ``"output/"`` (None if there is none)."""

    def input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.input_prefix}"


def objects_source(definition: Mapping[str, Any]) -> ObjectsSource | None:
    """The objects source of a state machine whose items are the objects under a fixed bucket and prefix.

    That is a top-level Map whose ItemReader is ``s3:listObjectsV2`` with a literal Bucket (what
    BurstCompute's ``input_prefix`` mode synthesizes): such a job takes no items in its input. A
    listing whose bucket or prefix comes from the input (``Bucket.$``) is not one: the input drives it.
    """
    for state in (definition.get("States") or {}).values():
        if not isinstance(state, dict) or state.get("Type") != "Map":
            continue
        reader = state.get("ItemReader") or {}
        reader_parameters = reader.get("Parameters") or {}
        bucket = reader_parameters.get("Bucket")
        if reader.get("Resource") != LIST_OBJECTS_V2 or not isinstance(bucket, str):
            continue
        prefix = reader_parameters.get("Prefix", "")
        item = (state.get("ItemSelector") or {}).get("item")
        output_prefix = item.get("output_prefix") if isinstance(item, dict) else None
        return ObjectsSource(
            bucket=bucket,
            input_prefix=prefix if isinstance(prefix, str) else "",
            output_prefix=output_prefix if isinstance(output_prefix, str) and output_prefix else None,
        )
    return None


# ------------------------------------------------------------------------------------------ objects jobs

_Upload = tuple[str, Path | bytes]
"""One input object to upload: its key below the input prefix and a file or the body itself."""


def input_uploads(
    input_dir: Path | str | None, input_objects: Mapping[str, bytes | str] | None
) -> list[_Upload]:
    """The input objects asked for, checked before anything is synthesized or started."""
    uploads: list[_Upload] = []
    if input_dir is not None:
        root = Path(input_dir)
        if not root.is_dir():
            raise JobInputError(
                f"input_dir {root} is not a directory: pass the folder whose files become the job's input "
                "objects (burstmap run --input-dir DIR)"
            )
        uploads += [(path.relative_to(root).as_posix(), path) for path in _files_under(root)]
    for key, body in (input_objects or {}).items():
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise JobInputError(
                f"input_objects keys are object keys below the input prefix, like 'a/b.txt'; got {key!r}"
            )
        if not isinstance(body, bytes | str):
            raise JobInputError(
                f"input_objects[{key!r}] must be bytes or str (the object's body), got {type(body).__name__}"
            )
        uploads.append((key, body.encode() if isinstance(body, str) else body))
    return uploads


def _files_under(root: Path) -> Iterator[Path]:
    """Every file below ``root``, in key order (symlinked files followed, as ``aws s3 cp`` does)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def check_item_source(
    source: ObjectsSource | None, item_source: str | None, objects_given: bool, endpoint_url: str | None
) -> None:
    """An app over S3 objects takes no items in its input; any other app takes nothing but them."""
    if source is not None and item_source is not None:
        raise JobInputError(
            f"this app's items are the objects under {source.input_uri()} (BurstCompute input_prefix), so "
            f"its input takes no {item_source} (burstmap run --size or --items): upload the "
            "objects with input_dir (burstmap run --input-dir DIR) and pass only parameters, if any"
        )
    if source is None and (objects_given or item_source is None):
        given = "input_dir / input_objects" if objects_given else f"endpoint_url {endpoint_url} alone"
        raise JobInputError(
            f"this app takes its items from the job input, not from S3 objects (its state machine has no "
            f"BurstCompute input_prefix), so {given} cannot start it: give exactly one of size, items or "
            "items_file (burstmap run --size N or --items FILE)"
        )


def upload_inputs(s3: Any, source: ObjectsSource, uploads: list[_Upload]) -> None:
    """Put the input objects under the input prefix (large files in parts, by boto3's transfer manager)."""
    for relative_key, body in uploads:
        key = f"{source.input_prefix}{relative_key}"
        if isinstance(body, Path):
            s3.upload_file(str(body), source.bucket, key)
        else:
            s3.put_object(Bucket=source.bucket, Key=key, Body=body)
