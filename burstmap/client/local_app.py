"""The app a local job runs: synthesized with the job's construct props, read from its cloud assembly, and
turned into what the local services run (FunctionSpecs) and where its items come from (ObjectsSource)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstmap.client.job_input import JobInputError
from burstmap.local.app.assembly import LocalApp, LocalFunction, load_assembly
from burstmap.local.app.synth import synthesize
from burstmap.local.services.lambda_runtime import FunctionSpec

LIST_OBJECTS_V2 = "arn:aws:states:::s3:listObjectsV2"
BATCH_SIZE_CONTEXT = "burstmap:batch_size"
MAX_CONCURRENCY_CONTEXT = "burstmap:max_concurrency"


def synth_context(batch_size: int | None, max_concurrency: int | None) -> dict[str, Any]:
    """The CDK context that makes the app synthesize these construct props (none: the app's defaults)."""
    context: dict[str, Any] = {}
    if batch_size is not None:
        if batch_size < 1:
            raise JobInputError(f"batch_size must be 1 or more, got {batch_size}")
        context[BATCH_SIZE_CONTEXT] = batch_size
    if max_concurrency is not None:
        if max_concurrency < 0:
            raise JobInputError(f"max_concurrency must be 0 (no limit) or more, got {max_concurrency}")
        context[MAX_CONCURRENCY_CONTEXT] = max_concurrency
    return context


def assembly_dir(app_dir: Path, context: dict[str, Any]) -> Path:
    """cdk.out for the app's defaults; a directory per context inside it, so switching props is cheap."""
    if not context:
        return app_dir / "cdk.out"
    key = hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:12]
    return app_dir / "cdk.out" / "burstmap-local" / f"context-{key}"


def prepare_app(
    app_dir: Path, *, batch_size: int | None = None, max_concurrency: int | None = None
) -> LocalApp:
    """Synthesize (or reuse) the app for these props and read its cloud assembly."""
    app_dir = Path(app_dir).resolve()
    context = synth_context(batch_size, max_concurrency)
    out_dir = synthesize(app_dir, context=context, out_dir=assembly_dir(app_dir, context))
    return load_assembly(out_dir)


def function_spec(function: LocalFunction) -> FunctionSpec:
    """The local Lambda service's view of one of the app's functions."""
    return FunctionSpec(
        name=function.name,
        handler=function.handler,
        code_paths=list(function.code_paths),
        environment=dict(function.environment),
        timeout_seconds=float(function.timeout_seconds),
        memory_mb=int(function.memory_mb),
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
