"""The same job on this machine: what ``burstmap run`` does without ``--stack``.

The synthesized state machine (not the construct) is what runs: the app is synthesized (or its
up-to-date assembly reused), the chosen state machine's definition and the Lambda functions are read from
the cloud assembly, the job's batch size and concurrency are applied to that definition's Distributed
Maps (map_overrides.py), an S3 endpoint on loopback holds the buckets, and the real handler code runs in
warm worker processes. :class:`LocalBackend` prepares all of that in ``start``; the
:class:`LocalJob` it returns runs the execution in the calling thread when it is waited for, and keeps
the S3 server and workers until it is closed, so its results can be read. :func:`run_local` does it all
in one call. Everything started here is closed again, even on errors.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from burstmap.client.job import Job, JobFailed, JobNotFinished, NoResults, OnProgress
from burstmap.client.job_input import (
    InvalidArgument,
    InvalidArgumentType,
    JobInput,
    JobInputError,
    needs_staging,
    stage_items,
)
from burstmap.client.local_app import (
    ObjectsSource,
    check_item_source,
    function_specs,
    input_uploads,
    objects_source,
    prepare_app,
    upload_inputs,
)
from burstmap.client.map_overrides import MapOverrides, apply_map_overrides
from burstmap.client.output_dir import OutputDir
from burstmap.client.results import (
    DownloadedResults,
    S3Object,
    copy_prefix,
    manifest_named_by,
    manifests_of_map_runs,
)
from burstmap.local import InputTooLarge, execute, load_definition
from burstmap.local.app.assembly import LocalApp, LocalStateMachine
from burstmap.local.app.errors import AssemblyError
from burstmap.local.app.machines import select_state_machine
from burstmap.local.app.synth import Synthesis
from burstmap.local.core.errors import DefinitionError
from burstmap.local.core.limits import LOCAL_ACCOUNT, LOCAL_REGION
from burstmap.local.core.progress import Progress
from burstmap.local.services.lambda_runtime import LambdaConfigurationError, LambdaRuntime
from burstmap.local.services.s3 import LocalS3, LocalS3Error
from burstmap.runtime.contracts import MAX_DISTRIBUTED_CONCURRENCY
from burstmap.runtime.results import ItemResult

PROGRESS_INTERVAL_SECONDS = 0.25
STAT_NAMES = ("invocations", "retries", "failures", "throttles")
LOCAL_ITEMS_BUCKET = "burstmap-local-items"
"""Where a large --items list is staged when the app has no bucket of its own."""

__all__ = ["JobInputError", "LocalBackend", "LocalJob", "LocalJobResult", "LocalOptions", "run_local"]


@dataclass(frozen=True)
class LocalOptions:
    """How a local job runs; the defaults are the app's settings and the engine's.

    ``batch_size`` / ``max_concurrency`` are applied to the definition's Distributed Map states (any app,
    no re-synth); ``state_machine`` picks one of several (construct path, logical id, name); ``input_dir`` /
    ``input_objects`` are uploaded under the input prefix of an app over S3 objects; ``endpoint_url`` is an
    S3 server to use instead of the embedded one (objects already on it are an objects job's items).
    """

    batch_size: int | None = None
    max_concurrency: int | None = None
    workers: int | None = None
    inject_throttle: float = 0.0
    retry_time_scale: float = 1.0
    endpoint_url: str | None = None
    app_dir: Path | str | None = None
    seed: int = 0
    state_machine: str | None = None
    input_dir: Path | str | None = None
    input_objects: Mapping[str, bytes | str] | None = None
    synth: bool = False
    """Synthesize the app even when its assembly is up to date."""
    synth_timeout: float | None = None
    """Seconds the app may take to synthesize (default ``$BURSTMAP_SYNTH_TIMEOUT``, else 300)."""

    def __post_init__(self) -> None:
        check_options(self)

    def map_overrides(self) -> MapOverrides:
        """What this run changes in the definition's Distributed Map states."""
        return MapOverrides(batch_size=self.batch_size, max_concurrency=self.max_concurrency)

    @property
    def objects_given(self) -> bool:
        return self.input_dir is not None or self.input_objects is not None


def check_options(options: LocalOptions) -> None:
    """Every option of a local job, checked before anything runs: InvalidArgument names the one that is
    wrong (the command line words it for its option: ``--retry-time-scale``)."""
    _whole(options, "batch_size", minimum=1)
    _whole(options, "max_concurrency", minimum=0, meaning="0 is no limit")
    _whole(options, "workers", minimum=1)
    _whole(options, "seed", minimum=None)
    _number(options, "inject_throttle", "a fraction of invocations, 0 to 1", maximum=1.0)
    _number(options, "retry_time_scale", "a finite number, 0 or more (0 skips the waits)")
    if options.max_concurrency is not None and options.max_concurrency > MAX_DISTRIBUTED_CONCURRENCY:
        raise InvalidArgument(
            "max_concurrency",
            options.max_concurrency,
            f"must be 0 (no limit) to {MAX_DISTRIBUTED_CONCURRENCY}",
        )
    if options.synth_timeout is not None:
        _number(options, "synth_timeout", "a number of seconds above 0")
        if options.synth_timeout == 0:
            raise InvalidArgument("synth_timeout", 0, "must be a number of seconds above 0")
    url = options.endpoint_url
    if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in {"http", "https"}):
        raise InvalidArgument(
            "endpoint_url", url, "must be an http:// or https:// URL of an S3-compatible server"
        )
    for name in ("app_dir", "input_dir"):
        value = getattr(options, name)
        if value is not None and not isinstance(value, str | os.PathLike):
            raise InvalidArgumentType(
                name, value, f"must be a path (str or pathlib.Path), got {type(value).__name__}"
            )
    if options.state_machine is not None and not isinstance(options.state_machine, str):
        raise InvalidArgumentType(
            "state_machine", options.state_machine, "must be a state machine's name or logical id (a str)"
        )
    if options.input_objects is not None and not isinstance(options.input_objects, Mapping):
        raise InvalidArgumentType(
            "input_objects", options.input_objects, "must be a mapping {key below the input prefix: body}"
        )


def _whole(options: LocalOptions, name: str, *, minimum: int | None, meaning: str = "") -> None:
    value = getattr(options, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(name, value, f"must be a whole number (an int), got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(
            name, value, f"must be {minimum} or more" + (f" ({meaning})" if meaning else "")
        )


def _number(options: LocalOptions, name: str, wanted: str, *, maximum: float = math.inf) -> None:
    value = getattr(options, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType(name, value, f"must be {wanted}, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= maximum):
        raise InvalidArgument(name, value, f"must be {wanted}")


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
    output_dir: DownloadedResults | None = None
    """With ``output_dir``: the files written there (``files`` lists them all)."""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class LocalBackend:
    """Jobs run by the local engine on the app in ``options.app_dir`` (default: the current directory)."""

    cannot_start: ClassVar[tuple[type[BaseException], ...]] = (
        JobInputError,
        AssemblyError,  # SynthesisError, UnresolvableToken
        DefinitionError,  # UnsupportedFeature
        InputTooLarge,
        LambdaConfigurationError,
        LocalS3Error,
    )

    def __init__(
        self, options: LocalOptions | None = None, *, on_synth: Callable[[Synthesis], None] | None = None
    ) -> None:
        self.options = options or LocalOptions()
        self.on_synth = on_synth
        """Told whether the app was synthesized or its assembly reused, and why (``describe()``)."""

    def start(self, job_input: JobInput) -> LocalJob:
        """Synthesize the app, check the job against it, and start the S3 server and the workers.

        Everything that can refuse the job does so here, before any process starts: the input objects,
        an item source the app does not take, a definition the engine does not run.
        """
        started = time.perf_counter()
        options = self.options
        uploads = input_uploads(options.input_dir, options.input_objects)
        if job_input.over_objects and not options.objects_given and options.endpoint_url is None:
            raise JobInputError(
                "give exactly one of size, items or items_file; or, for an app whose items are S3 objects "
                "(BurstCompute input_prefix), input_dir or input_objects with the objects to process"
            )
        if options.endpoint_url is not None:
            check_endpoint(options.endpoint_url)  # before synth: an unusable server answers at once
        app = prepare_app(
            app_folder(options.app_dir),
            force_synth=options.synth,
            synth_timeout=options.synth_timeout,
            on_synth=self.on_synth,
        )
        path, machine = select_state_machine(app, options.state_machine)
        definition = apply_map_overrides(machine.definition, options.map_overrides(), state_machine=path)
        machine = dataclasses.replace(machine, definition=definition)
        app.check_runnable(machine)
        source = objects_source(machine.definition)
        check_item_source(source, job_input.source, options.objects_given, options.endpoint_url)
        load_definition(machine.definition)  # UnsupportedFeature before any process starts
        resources = ExitStack()
        try:
            s3 = resources.enter_context(LocalS3(options.endpoint_url))
            for bucket in app.buckets:
                s3.ensure_bucket(bucket.name)
            if source is not None:
                s3.ensure_bucket(source.bucket)
                upload_inputs(s3.client(), source, uploads)
            execution_input = job_input.execution_input
            if needs_staging(execution_input):  # as on AWS: an execution input is capped at 256 KiB
                bucket = app.buckets[0].name if app.buckets else LOCAL_ITEMS_BUCKET
                s3.ensure_bucket(bucket)
                execution_input = stage_items(execution_input, bucket, s3.client().put_object)
            runtime = LambdaRuntime(
                function_specs(app),
                workers=options.workers,
                throttle_rate=options.inject_throttle,
                seed=options.seed,
                extra_env=s3.env(),  # workers inherit no AWS_* variables: the endpoint and credentials
            )
            resources.enter_context(closing(runtime))
        except BaseException:
            resources.close()
            raise
        return LocalJob(app, machine, source, execution_input, options, s3, runtime, resources, started)


def app_folder(app_dir: Path | str | None) -> Path:
    """The folder of the app to run (default: the current directory); an error naming ``app_dir`` (the
    CLI's --app-dir) when it holds no CDK app, before anything is synthesized."""
    folder = Path.cwd() if app_dir is None else Path(app_dir)
    if (folder / "app.py").is_file() or (folder / "cdk.json").is_file():
        return folder
    what = "holds no CDK app (neither app.py nor cdk.json)" if folder.is_dir() else "is not a folder"
    if app_dir is None:
        raise JobInputError(
            f"the current directory {folder} {what}: run from the app's folder, or name it "
            "(burstmap run --app-dir DIR, run_local(app_dir=...))"
        )
    raise InvalidArgument("app_dir", app_dir, f"{what}: give the folder of a CDK app (app.py or cdk.json)")


def check_endpoint(url: str) -> None:
    """InvalidArgument for ``endpoint_url`` unless an S3 server answers there to this process's credentials.

    ListBuckets is the probe: any answer from the server, an AccessDenied included, means it is there and
    reads the signature; no credentials, no connection or a key it does not know refuse the job.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1})
    try:
        client = boto3.session.Session().client(
            "s3", endpoint_url=url, region_name=LOCAL_REGION, config=config
        )
        client.list_buckets()
    except NoCredentialsError:
        raise InvalidArgument(
            "endpoint_url",
            url,
            "no AWS credentials to sign requests to it: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE) with the server's keys",
        ) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in {"AccessDenied", "403"}:
            raise InvalidArgument(
                "endpoint_url", url, f"the server refused ListBuckets ({code or exc})"
            ) from None
    except (BotoCoreError, ValueError) as exc:
        raise InvalidArgument(
            "endpoint_url", url, f"no S3 server answers there ({exc}): start it, or check the address"
        ) from None


class LocalJob(Job):
    """One local execution: ready after ``LocalBackend.start``, run by ``wait`` (in the calling thread)."""

    def __init__(
        self,
        app: LocalApp,
        machine: LocalStateMachine,
        source: ObjectsSource | None,
        execution_input: dict[str, Any],
        options: LocalOptions,
        s3: LocalS3,
        runtime: LambdaRuntime,
        resources: ExitStack,
        started: float,
    ) -> None:
        self.app = app
        self.machine = machine
        self.source = source
        self.execution_input = execution_input
        self.options = options
        self.s3 = s3
        self.runtime = runtime
        self.name = str(uuid.uuid4())
        self._resources = resources
        self._started = started
        self._result: Any = None
        self._run_seconds = 0.0
        self._progress: Progress | None = None

    @property
    def id(self) -> str:
        return f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:execution:{self.machine.name}:{self.name}"

    def wait(self, *, on_progress: OnProgress | None = None) -> Any:
        """Run the execution to its end (once); returns the engine's ExecutionResult."""
        if self._result is not None:
            return self._result
        progress = _Throttled(self._record, on_progress) if on_progress is not None else None
        run_started = time.perf_counter()
        self._result = execute(
            self.machine.definition,
            self.execution_input,
            runtime=self.runtime,
            s3_client=self.s3.client(),
            retry_time_scale=self.options.retry_time_scale,
            name=self.name,
            state_machine_name=self.machine.name,
            max_workers=self.options.workers,
            seed=self.options.seed,
            on_progress=progress,
        )
        self._run_seconds = time.perf_counter() - run_started
        if progress is not None:
            progress.flush()
        return self._result

    def _record(self, progress: Progress) -> None:
        self._progress = progress

    def progress(self) -> Progress:
        """The last counts the engine reported while ``wait`` ran with ``on_progress``; after the run, the
        map runs' final counts (as DescribeMapRun gives them)."""
        if self._result is None:
            return self._progress or Progress(total=None)
        return Progress.of_map_runs(
            [run.item_counts for run in self._result.map_runs],
            elapsed_seconds=self._run_seconds,
            retries=self._result.stats.retries,
            execution_counts=[run.execution_counts for run in self._result.map_runs],
        )

    def result(self) -> Any:
        if self._result is None:
            raise JobNotFinished(f"the local execution {self.id} has not run: wait for it first")
        if self._result.status == "SUCCEEDED":
            return self._result.output
        raise self._failed(self._result.status, self._result.error, self._result.cause)

    def stats(self) -> dict[str, Any]:
        """Wall time since ``start`` (synth included), the execution's own time, and the engine's counts."""
        engine = self._result.stats.as_dict() if self._result is not None else {}
        return {
            "wall_seconds": round(time.perf_counter() - self._started, 3),
            "run_seconds": round(self._run_seconds, 3),
            **{k: v for k, v in engine.items() if k in STAT_NAMES},
        }

    def interrupted(self) -> str:
        return "the local job was stopped"

    def _write_results(self, directory: Path) -> DownloadedResults:
        """The manifest, result files and failed_items.json; for a job over S3 objects also what its
        compute wrote under the output prefix, at its key's path."""
        downloaded = super()._write_results(directory)
        if self.source is not None and self.source.output_prefix is not None:
            downloaded.output_files = copy_prefix(
                self.s3.client(), self.source.bucket, self.source.output_prefix, directory
            )
        return downloaded

    def _manifests(self) -> list[S3Object]:
        if self._result is None:
            return []
        named = manifest_named_by(self._result.output if self._result.status == "SUCCEEDED" else None)
        if named is not None:
            return [named]
        runs = [run.map_run_arn for run in self._result.map_runs]
        return manifests_of_map_runs(self.s3.client(), self.machine.definition, runs)

    def _results_s3(self) -> Any:
        return self.s3.client()

    def _no_results(self) -> NoResults:
        return NoResults(
            f"the local execution {self.id} wrote no ResultWriter manifest (it ended before a Distributed "
            "Map finished)"
        )

    def close(self) -> None:
        """Stop the worker processes and the S3 server (idempotent)."""
        self._resources.close()


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
    synth: bool = False,
    synth_timeout: float | None = None,
) -> LocalJobResult:
    """Run the app's job locally and return how it ended (a failed execution is a result, not an exception).

    Most apps take their items from the input: exactly one of ``size``, ``items`` or ``items_file``. An
    app whose items are S3 objects (BurstCompute ``input_prefix``) takes none of them: ``input_dir`` (its
    files, recursively) and ``input_objects`` (``{relative key: body}``) are uploaded under the input
    prefix of the local S3 first (``DIR/a/b.txt`` -> ``input/a/b.txt``), or the objects are already on
    the S3 server ``endpoint_url`` names; the execution input is then ``{"parameters": ...}`` alone. With
    ``output_dir``, the manifest, the result files and failed_items.json are copied there, and what the
    compute wrote under the output prefix too, at its key's path; the folder is checked and locked before
    anything runs and replaced as a whole at the end (:mod:`burstmap.client.output_dir`).

    The app is synthesized when anything it reads changed since its last local synth (or always, with
    ``synth=True``), within ``synth_timeout`` seconds; ``batch_size`` / ``max_concurrency`` apply to
    its Distributed Maps, and ``state_machine`` picks one of its state machines when it has several.

    Exceptions are for what stops the job from running at all (``LocalBackend.cannot_start``): bad
    arguments (``JobInputError``), an app that does not synthesize or cannot run locally
    (``AssemblyError``), a definition the engine refuses, an S3 endpoint that cannot be reached.
    """
    options = LocalOptions(
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        workers=workers,
        inject_throttle=inject_throttle,
        retry_time_scale=retry_time_scale,
        endpoint_url=endpoint_url,
        app_dir=app_dir,
        seed=seed,
        state_machine=state_machine,
        input_dir=input_dir,
        input_objects=input_objects,
        synth=synth,
        synth_timeout=synth_timeout,
    )
    job_input = JobInput.of(size=size, items=items, items_file=items_file, parameters=parameters)
    with ExitStack() as claimed:
        output = None if output_dir is None else claimed.enter_context(OutputDir.claim(output_dir))
        with LocalBackend(options).start(job_input) as job:
            job.wait(on_progress=on_progress)
            outcome = LocalJobResult(status="SUCCEEDED")
            try:
                outcome.output = job.result()
            except JobFailed as failed:
                outcome.status, outcome.error, outcome.cause = failed.status, failed.error, failed.cause
                outcome.first_failure, outcome.failed_count = failed.first_failure, failed.failed_items
            if output is not None:
                outcome.output_dir = job.save_results(output)
                outcome.files = outcome.output_dir.files
            if stats:
                outcome.stats = job.stats()
    return outcome


class _Throttled:
    """Records every Progress and forwards it at most every PROGRESS_INTERVAL_SECONDS (the engine reports
    every item)."""

    def __init__(self, record: OnProgress, on_progress: OnProgress) -> None:
        self._record = record
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._pending: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        self._record(progress)
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
