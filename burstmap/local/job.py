"""Run the example app's job on this machine: what ``burstmap run`` does by default.

The synthesized state machine (not the construct) is what runs: the app is synthesized with the job's
batch size and concurrency as CDK context (or an up-to-date cdk.out is reused), its definition and Lambda
functions are read from the cloud assembly, an S3 endpoint on loopback holds the buckets, and the real
handler code runs in warm worker processes. Everything started here is closed again, even on errors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from burstmap.local.assembly import LocalApp, load_assembly, synthesize

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.progress import Progress

BATCH_SIZE_CONTEXT = "burstmap:batch_size"
MAX_CONCURRENCY_CONTEXT = "burstmap:max_concurrency"
PROGRESS_INTERVAL_SECONDS = 0.25
STAT_NAMES = ("invocations", "retries", "failures", "throttles")

class JobInputError(ValueError):
    """The job was described inconsistently (before anything runs); the message says how to fix it."""


@dataclass
class LocalJobResult:
    """How a local execution ended, with its output (or error and cause) and, when asked, run statistics."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stats: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def build_input(
    *,
    size: int | None = None,
    items: list[Any] | None = None,
    items_file: Path | str | None = None,
    parameters: dict[str, Any] | str | None = None,
) -> dict[str, Any]:
    """The execution input of the contract: ``{"size": N}`` or ``{"items": [...]}``, plus parameters.

    Values are passed as given (``size=-5`` included): validating them is the start Lambda's job, so a
    local run fails exactly like the deployed one, with ``InvalidInput``.
    """
    given = [
        name
        for name, value in (("size", size), ("items", items), ("items_file", items_file))
        if value is not None
    ]
    if len(given) != 1:
        raise JobInputError(
            f"give exactly one of size, items or items_file (got {', '.join(given) or 'none'}): "
            "e.g. burstmap run --size 1024"
        )
    execution_input: dict[str, Any]
    if size is not None:
        execution_input = {"size": size}
    elif items is not None:
        execution_input = {"items": list(items)}
    else:
        execution_input = {"items": read_items_file(Path(str(items_file)))}
    if parameters is not None:
        if isinstance(parameters, str):
            try:
                parameters = json.loads(parameters)
            except ValueError as exc:
                raise JobInputError(
                    f"parameters are not JSON ({exc}): pass an object, e.g. '{{\"k\": 1}}'"
                ) from exc
        if not isinstance(parameters, dict):
            raise JobInputError(f"parameters must be a JSON object, got {type(parameters).__name__}")
        execution_input["parameters"] = parameters
    return execution_input


def read_items_file(path: Path) -> list[Any]:
    """A JSON array file, or JSON Lines (``.jsonl``: one JSON value a line)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise JobInputError(f"cannot read the items file {path}: {exc}") from exc
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        items = json.loads(text)
    except ValueError as exc:
        raise JobInputError(f"{path} is not valid JSON ({exc}): give a JSON array or a .jsonl file") from exc
    if not isinstance(items, list):
        raise JobInputError(f"{path} holds a JSON {type(items).__name__}, not an array of items")
    return items


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


def run_local(
    *,
    size: int | None = None,
    items: list[Any] | None = None,
    items_file: Path | str | None = None,
    parameters: dict[str, Any] | str | None = None,
    batch_size: int | None = None,
    max_concurrency: int | None = None,
    workers: int | None = None,
    output_dir: Path | str | None = None,
    stats: bool = False,
    inject_throttle: float = 0.0,
    retry_time_scale: float = 1.0,
    endpoint_url: str | None = None,
    app_dir: Path | str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    seed: int = 0,
    state_machine: str | None = None,
) -> LocalJobResult:
    """Run the app's job locally and return how it ended (a failed execution is a result, not an exception).

    Exceptions are for what stops the job from running at all: bad arguments (``JobInputError``), an app
    that does not synthesize or cannot run locally (``AssemblyError``), an S3 endpoint that cannot be
    reached.
    """
    if not 0.0 <= inject_throttle <= 1.0:
        raise JobInputError(f"inject_throttle is a fraction of invocations, 0 to 1; got {inject_throttle}")
    if retry_time_scale < 0:
        raise JobInputError(f"retry_time_scale must be 0 or more, got {retry_time_scale}")
    execution_input = build_input(size=size, items=items, items_file=items_file, parameters=parameters)
    started = time.perf_counter()
    app = prepare_app(Path(app_dir or Path.cwd()), batch_size=batch_size, max_concurrency=max_concurrency)
    machine = app.state_machine(state_machine)
    app.check_runnable(machine)

    from burstmap.local import execute
    from burstmap.local.lambda_runtime import LambdaRuntime
    from burstmap.local.s3 import LocalS3

    with ExitStack() as stack:
        s3 = stack.enter_context(LocalS3(endpoint_url))
        for bucket in app.buckets:
            s3.ensure_bucket(bucket.name)
        runtime = stack.enter_context(
            closing(
                LambdaRuntime(
                    app.function_specs(),
                    workers=workers,
                    throttle_rate=inject_throttle,
                    seed=seed,
                    extra_env=s3.env(),
                )
            )
        )
        progress = _Throttled(on_progress) if on_progress is not None else None
        run_started = time.perf_counter()
        result = execute(
            machine.definition,
            execution_input,
            runtime=runtime,
            s3_client=s3.client(),
            retry_time_scale=retry_time_scale,
            state_machine_name=machine.name,
            max_workers=workers,
            seed=seed,
            on_progress=progress,
        )
        run_seconds = time.perf_counter() - run_started
        if progress is not None:
            progress.flush()
        job = LocalJobResult(
            status=result.status, output=result.output, error=result.error, cause=result.cause
        )
        if output_dir is not None:
            job.files = copy_results(
                s3.client(), job.output, Path(output_dir), app=None if endpoint_url else app
            )
        if stats:
            job.stats = {
                "wall_seconds": round(time.perf_counter() - started, 3),
                "run_seconds": round(run_seconds, 3),
                **{k: v for k, v in result.stats.as_dict().items() if k in STAT_NAMES},
            }
    return job


class _Throttled:
    """Forwards Progress at most every PROGRESS_INTERVAL_SECONDS (the engine reports every item)."""

    def __init__(self, on_progress: Callable[[Progress], None]) -> None:
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._pending: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_sent < PROGRESS_INTERVAL_SECONDS:
                self._pending = progress
                return
            self._last_sent, self._pending = now, None
        self._on_progress(progress)

    def flush(self) -> None:
        """Send the last counts held back (the final ones), if any."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._on_progress(pending)


def copy_results(s3: Any, output: Any, output_dir: Path, *, app: LocalApp | None) -> list[Path]:
    """Copy the ResultWriter manifest and the result files it lists out of S3 into ``output_dir``.

    The manifest is the one the combine output names; without it (a failed execution) every manifest in
    the app's local buckets is copied, which on the embedded endpoint means this run's.
    """
    manifests = []
    if isinstance(output, dict) and isinstance(output.get("manifest"), str):
        manifests.append(_split_s3_uri(output["manifest"]))
    elif app is not None:
        for bucket in app.buckets:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
                manifests += [
                    (bucket.name, o["Key"])
                    for o in page.get("Contents", [])
                    if o["Key"].endswith("manifest.json")
                ]
    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for bucket, manifest_key in manifests:
        prefix = PurePosixPath(manifest_key).parent
        target_root = output_dir if len(manifests) == 1 else output_dir / prefix.name
        body = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
        written.append(_write(target_root / "manifest.json", body))
        manifest = json.loads(body)
        result_bucket = manifest.get("DestinationBucket", bucket)
        for entries in manifest.get("ResultFiles", {}).values():
            for entry in entries:
                key = PurePosixPath(entry["Key"])
                relative = key.relative_to(prefix) if key.is_relative_to(prefix) else PurePosixPath(key.name)
                target = target_root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    shutil.copyfileobj(s3.get_object(Bucket=result_bucket, Key=str(key))["Body"], handle)
                written.append(target)
    return written


def _write(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise JobInputError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
