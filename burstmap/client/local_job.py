"""Run the example app's job on this machine: what ``burstmap run`` does by default.

The synthesized state machine (not the construct) is what runs: the app is synthesized with the job's
batch size and concurrency as CDK context (or an up-to-date cdk.out is reused), its definition and Lambda
functions are read from the cloud assembly, an S3 endpoint on loopback holds the buckets, and the real
handler code runs in warm worker processes. Everything started here is closed again, even on errors.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from burstmap.client.job_input import (
    STAGED_ITEMS_PREFIX,
    JobInputError,
    build_execution_input,
    items_as_json_lines,
    needs_staging,
    parse_parameters,
)
from burstmap.client.local_app import ObjectsSource, function_specs, objects_source, prepare_app
from burstmap.local.app.assembly import LocalApp

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.client.progress import Progress
    from burstmap.runtime.results import ItemResult

PROGRESS_INTERVAL_SECONDS = 0.25
STAT_NAMES = ("invocations", "retries", "failures", "throttles")
LOCAL_ITEMS_BUCKET = "burstmap-local-items"
"""Where a large --items list is staged when the app has no bucket of its own."""

__all__ = ["JobInputError", "LocalJobResult", "ObjectsSource", "objects_source", "prepare_app", "run_local"]


@dataclass
class LocalJobResult:
    """How a local execution ended, with its output (or error and cause) and, when asked, run statistics."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stats: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)
    first_failure: ItemResult | None = None
    """Of a failed execution: the first item in its map runs' FAILED files (which item, error, cause)."""
    failed_count: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


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
    input_dir: Path | str | None = None,
    input_objects: Mapping[str, bytes | str] | None = None,
) -> LocalJobResult:
    """Run the app's job locally and return how it ended (a failed execution is a result, not an exception).

    Most apps take their items from the input: exactly one of ``size``, ``items`` or ``items_file``. An
    app whose items are S3 objects (BurstCompute ``input_prefix``) takes none of them: ``input_dir`` (its
    files, recursively) and ``input_objects`` (``{relative key: body}``) are uploaded under the input
    prefix of the local S3 first (``DIR/a/b.txt`` -> ``input/a/b.txt``), or the objects are already on
    the S3 server ``endpoint_url`` names; the execution input is then ``{"parameters": ...}`` alone. With
    ``output_dir``, what the compute wrote under the output prefix is copied there too, at its key's path.

    Exceptions are for what stops the job from running at all: bad arguments (``JobInputError``), an app
    that does not synthesize or cannot run locally (``AssemblyError``), an S3 endpoint that cannot be
    reached.
    """
    if not 0.0 <= inject_throttle <= 1.0:
        raise JobInputError(f"inject_throttle is a fraction of invocations, 0 to 1; got {inject_throttle}")
    if retry_time_scale < 0:
        raise JobInputError(f"retry_time_scale must be 0 or more, got {retry_time_scale}")
    if workers is not None and workers < 1:
        raise JobInputError(f"workers must be 1 or more, got {workers}")
    item_sources_given = [
        name
        for name, value in (("size", size), ("items", items), ("items_file", items_file))
        if value is not None
    ]
    uploads = _input_uploads(input_dir, input_objects)
    objects_given = input_dir is not None or input_objects is not None
    if not item_sources_given and not objects_given and endpoint_url is None:
        raise JobInputError(
            "give exactly one of size, items or items_file; or, for an app whose items are S3 objects "
            "(BurstCompute input_prefix), input_dir or input_objects with the objects to process"
        )
    if item_sources_given:  # two of them are refused here, before the app is synthesized
        execution_input = build_execution_input(
            size=size, items=items, items_file=items_file, parameters=parameters
        )
    else:  # a job over S3 objects (checked against the app below): the input is its parameters alone
        checked = parse_parameters(parameters)
        execution_input = {} if checked is None else {"parameters": checked}
    started = time.perf_counter()
    app = prepare_app(Path(app_dir or Path.cwd()), batch_size=batch_size, max_concurrency=max_concurrency)
    machine = app.state_machine(state_machine)
    app.check_runnable(machine)
    source = objects_source(machine.definition)
    _check_item_source(source, item_sources_given, objects_given, endpoint_url)

    from burstmap.local import execute, load_definition
    from burstmap.local.services.lambda_runtime import LambdaRuntime
    from burstmap.local.services.s3 import LocalS3

    load_definition(machine.definition)  # UnsupportedFeature before any process starts
    with ExitStack() as stack:
        s3 = stack.enter_context(LocalS3(endpoint_url))
        for bucket in app.buckets:
            s3.ensure_bucket(bucket.name)
        if source is not None:
            s3.ensure_bucket(source.bucket)
            _upload_inputs(s3.client(), source, uploads)
        if needs_staging(execution_input):
            execution_input = _stage_items(execution_input, s3, app)
        runtime = stack.enter_context(
            closing(
                LambdaRuntime(
                    function_specs(app),
                    workers=workers,
                    throttle_rate=inject_throttle,
                    seed=seed,
                    extra_env=s3.env(),  # workers inherit no AWS_* variables: the endpoint and credentials
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
        if not job.succeeded and result.map_runs:
            job.first_failure, job.failed_count = failed_items_of(
                s3.client(), app, [run.map_run_arn for run in result.map_runs]
            )
        if output_dir is not None:
            job.files = copy_results(
                s3.client(), job.output, Path(output_dir), app=None if endpoint_url else app
            )
            if source is not None and source.output_prefix is not None:
                job.files += copy_prefix(s3.client(), source.bucket, source.output_prefix, Path(output_dir))
        if stats:
            job.stats = {
                "wall_seconds": round(time.perf_counter() - started, 3),
                "run_seconds": round(run_seconds, 3),
                **{k: v for k, v in result.stats.as_dict().items() if k in STAT_NAMES},
            }
    return job


_Upload = tuple[str, Path | bytes]
"""One input object to upload: its key below the input prefix and a file or the body itself."""


def _input_uploads(
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


def _check_item_source(
    source: ObjectsSource | None, item_sources: list[str], objects_given: bool, endpoint_url: str | None
) -> None:
    """An app over S3 objects takes no items in its input; any other app takes nothing but them."""
    if source is not None and item_sources:
        raise JobInputError(
            f"this app's items are the objects under {source.input_uri()} (BurstCompute input_prefix), so "
            f"its input takes no {' or '.join(item_sources)} (burstmap run --size or --items): upload the "
            "objects with input_dir (burstmap run --input-dir DIR) and pass only parameters, if any"
        )
    if source is None and (objects_given or not item_sources):
        given = "input_dir / input_objects" if objects_given else f"endpoint_url {endpoint_url} alone"
        raise JobInputError(
            f"this app takes its items from the job input, not from S3 objects (its state machine has no "
            f"BurstCompute input_prefix), so {given} cannot start it: give exactly one of size, items or "
            "items_file (burstmap run --size N or --items FILE)"
        )


def _upload_inputs(s3: Any, source: ObjectsSource, uploads: list[_Upload]) -> None:
    """Put the input objects under the input prefix (large files in parts, by boto3's transfer manager)."""
    for relative_key, body in uploads:
        key = f"{source.input_prefix}{relative_key}"
        if isinstance(body, Path):
            s3.upload_file(str(body), source.bucket, key)
        else:
            s3.put_object(Bucket=source.bucket, Key=key, Body=body)


def copy_prefix(s3: Any, bucket: str, prefix: str, output_dir: Path) -> list[Path]:
    """Copy every object under ``prefix`` to ``output_dir/<key>``; a key that would leave it is refused."""
    root = output_dir.resolve()
    written: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            target = (root / key).resolve()
            if key.endswith("/") or not target.is_relative_to(root):
                continue  # a folder marker, or a key like "output/../x" that would write outside output_dir
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            written.append(target)
    return written


def _stage_items(execution_input: dict[str, Any], s3: Any, app: LocalApp) -> dict[str, Any]:
    """Upload a large ``items`` list to the local S3 as JSON Lines and pass ``items_s3`` instead, as a run
    on AWS does (an execution input is capped at 256 KiB)."""
    bucket = app.buckets[0].name if app.buckets else LOCAL_ITEMS_BUCKET
    s3.ensure_bucket(bucket)
    key = f"{STAGED_ITEMS_PREFIX}/{uuid.uuid4()}.jsonl"
    s3.client().put_object(Bucket=bucket, Key=key, Body=items_as_json_lines(execution_input["items"]))
    staged = {k: v for k, v in execution_input.items() if k != "items"}
    staged["items_s3"] = f"s3://{bucket}/{key}"
    return staged


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


def failed_items_of(s3: Any, app: LocalApp, map_run_arns: list[str]) -> tuple[ItemResult | None, int]:
    """The failed item of lowest index and the number of failed items of these map runs (FAILED files).

    A failed execution has no combine output naming its manifest; each map run's manifest is at
    ``<prefix>/<map run id>/manifest.json`` in one of the app's buckets (AWS's ResultWriter layout).
    """
    from burstmap.runtime.results import ResultReadError, iter_failed

    run_ids = {arn.rsplit(":", 1)[-1] for arn in map_run_arns}
    first: ItemResult | None = None
    count = 0
    for bucket in app.buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
            for entry in page.get("Contents", []):
                parts = entry["Key"].rsplit("/", 2)
                if len(parts) < 2 or parts[-1] != "manifest.json" or parts[-2] not in run_ids:
                    continue
                try:
                    for failed in iter_failed(bucket.name, entry["Key"], s3=s3):
                        if first is None or _item_order(failed) < _item_order(first):
                            first = failed
                        count += 1
                except ResultReadError:  # the failure itself is reported; a bad file only loses detail
                    continue
    return first, count


def _item_order(failed: ItemResult) -> tuple[bool, int]:
    return (failed.index is None, failed.index or 0)


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
