"""`burstmap run | plan | status | results | cancel | redrive`.

`run` is local by default (the example app's state machine on this machine) and on AWS with
``--stack NAME`` or ``--state-machine-arn ARN``; both print the execution output as one JSON object on
stdout, progress on stderr, and exit non-zero when the execution fails.

Exit codes: 0 success; 1 the execution failed (its error and cause are on stderr); 2 bad usage or an
AWS error (one line on stderr, no traceback); 130 interrupted (a remote job keeps running on AWS).

Progress: a live bar on stderr when stderr is a terminal; nothing otherwise, unless ``--progress``
asks for it, in which case plain lines (``burstmap: 512/1024 items (50.0%), ...``) are written every
10 seconds and once at the end, which suits CI logs. ``--no-progress`` hides it everywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from burstmap.client import aws
from burstmap.client import plan as planning
from burstmap.client.aws import AwsError
from burstmap.client.aws_job import AwsBackend, AwsJob
from burstmap.client.job import Backend, Job, JobFailed, NoResults
from burstmap.client.job_input import JobInput, JobInputError, parse_parameters, read_items_file
from burstmap.client.progress import progress_display
from burstmap.runtime.results import ResultReadError

app = typer.Typer(
    name="burstmap",
    help="Run embarrassingly parallel jobs on Step Functions Distributed Map, locally or on AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_FAILED = 1
EXIT_USAGE_OR_AWS = 2
EXIT_INTERRUPTED = 130

# ---------------------------------------------------------------------------------------- options
# Declared once, shared by the commands that take them.
Size = Annotated[int | None, typer.Option("--size", help="Run over the items 0..N-1.", show_default=False)]
ItemsFile = Annotated[
    Path | None,
    typer.Option("--items", help="A file of items: one JSON list, or JSON Lines.", show_default=False),
]
Parameters = Annotated[
    str | None,
    typer.Option("--parameters", help="A JSON object passed to every compute call.", show_default=False),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="Items per compute invocation. Default: the app's setting (plan without --app-dir: 1).",
        show_default=False,
    ),
]
MaxConcurrency = Annotated[
    int | None,
    typer.Option(
        "--max-concurrency",
        help="Child executions at once (local). Default: the app's setting.",
        show_default=False,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Local worker processes per function. Default: the CPU count.", show_default=False
    ),
]
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="Copy the manifest, the result files and failed_items.json here.",
        show_default=False,
    ),
]
Stats = Annotated[bool, typer.Option("--stats", help="Add a `stats` object to the printed JSON.")]
InjectThrottle = Annotated[
    float | None,
    typer.Option(
        "--inject-throttle",
        metavar="RATE",
        help="Local: fail this fraction of Lambda invocations with Lambda.TooManyRequestsException.",
        show_default=False,
    ),
]
RetryTimeScale = Annotated[
    float | None,
    typer.Option(
        "--retry-time-scale", metavar="F", help="Local: scale Retry waits (0 for tests).", show_default=False
    ),
]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="Local: an S3-compatible server to use instead of the embedded one.",
        show_default=False,
    ),
]
InputDir = Annotated[
    Path | None,
    typer.Option(
        "--input-dir",
        help="Local, for an app over S3 objects (BurstCompute input_prefix): upload the files under DIR "
        "as its input objects (DIR/a.txt -> <input_prefix>/a.txt), then run over them (no --size/--items).",
        show_default=False,
    ),
]
AppDir = Annotated[
    Path | None,
    typer.Option(
        "--app-dir",
        help="Local: the CDK app directory (cdk.json). Default: the current directory.",
        show_default=False,
    ),
]
Synth = Annotated[
    bool,
    typer.Option("--synth", help="Local: synthesize the app even when nothing it reads changed."),
]
SynthTimeout = Annotated[
    float | None,
    typer.Option(
        "--synth-timeout",
        metavar="SECONDS",
        help="Local: stop an app that takes longer to synthesize. Default: $BURSTMAP_SYNTH_TIMEOUT or 300.",
        show_default=False,
    ),
]
StateMachine = Annotated[
    str | None,
    typer.Option(
        "--state-machine",
        help="Local: which state machine of the app, when it has several: its construct path "
        "(MyStack/JobB), logical id or name.",
        show_default=False,
    ),
]
Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="Run on AWS: the deployed stack (outputs StateMachineArn, BucketName).",
        show_default=False,
    ),
]
StateMachineArn = Annotated[
    str | None,
    typer.Option("--state-machine-arn", help="Run on AWS: this state machine.", show_default=False),
]
NoWait = Annotated[bool, typer.Option("--no-wait", help="AWS: print the execution ARN and return at once.")]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress on stderr: a live bar on a terminal, else a plain line at most every 10 s "
        "(--no-progress hides it).",
        show_default=False,
    ),
]
PollSeconds = Annotated[float, typer.Option("--poll-seconds", help="AWS: seconds between progress polls.")]
ExecutionName = Annotated[
    str | None, typer.Option("--name", help="AWS: the execution name. Default: a UUID.", show_default=False)
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region. Default: the execution ARN's, else the AWS config.", show_default=False
    ),
]
Profile = Annotated[str | None, typer.Option("--profile", help="AWS profile.", show_default=False)]
ExecutionArn = Annotated[str, typer.Argument(help="The execution ARN.", metavar="EXECUTION_ARN")]

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------------- helpers
class UsageError(Exception):
    """A bad combination of options: one line on stderr, exit 2."""


def _say(message: str) -> None:
    typer.echo(f"burstmap: {message}", err=True)


def _handles_errors(command: F) -> F:
    """Turn AWS errors and bad input into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (AwsError, UsageError, JobInputError, planning.InvalidPlan, NoResults, ResultReadError) as exc:
            _say(str(exc))
            raise typer.Exit(EXIT_USAGE_OR_AWS) from None
        except JobFailed as failed:
            _report_failure(failed)
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper  # type: ignore[return-value]


def _short_cause(cause: str | None) -> str:
    """A Lambda error's cause is a JSON string; its errorMessage is what a person needs to read."""
    if not cause:
        return "no cause given"
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def _report_failure(failed: JobFailed) -> None:
    _say(f"execution {failed.status}: {failed.error or 'no error name'}: {_short_cause(failed.cause)}")
    first = failed.first_failure
    if first is not None:
        where = f"item {first.index}" if first.index is not None else f"item {json.dumps(first.item)}"
        key = first.item.get("key") if isinstance(first.item, dict) else None
        if first.index is not None and isinstance(key, str):
            where += f" ({key})"  # a job over S3 objects: the object, which its index alone does not name
        others = failed.failed_items - 1
        _say(
            f"first failing {where}: {first.error}: {_short_cause(first.cause)}"
            + (f" ({others} other item{'s' if others != 1 else ''} failed)" if others > 0 else "")
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=_json_default))


# ---------------------------------------------------------------------------------------- run
@app.command()
@_handles_errors
def run(
    size: Size = None,
    items: ItemsFile = None,
    parameters: Parameters = None,
    batch_size: BatchSize = None,
    max_concurrency: MaxConcurrency = None,
    workers: Workers = None,
    output_dir: OutputDir = None,
    stats: Stats = False,
    inject_throttle: InjectThrottle = None,
    retry_time_scale: RetryTimeScale = None,
    endpoint_url: EndpointUrl = None,
    input_dir: InputDir = None,
    app_dir: AppDir = None,
    state_machine: StateMachine = None,
    synth: Synth = False,
    synth_timeout: SynthTimeout = None,
    stack: Stack = None,
    state_machine_arn: StateMachineArn = None,
    no_wait: NoWait = False,
    progress: ShowProgress = None,
    poll_seconds: PollSeconds = 2.0,
    name: ExecutionName = None,
    region: Region = None,
    profile: Profile = None,
) -> None:
    """Run a job and print its output as one JSON object (locally unless --stack / --state-machine-arn)."""
    is_local = stack is None and state_machine_arn is None
    # Neither is right for a job over S3 objects: locally given --input-dir or objects on --endpoint-url;
    # on AWS a stack in objects mode lists its own input prefix (a stack that needs items fails the
    # execution at once with InvalidInput from its start Lambda).
    objects_job = input_dir is not None or (is_local and endpoint_url is not None) or not is_local
    if (size is not None and items is not None) or (size is None and items is None and not objects_job):
        raise UsageError(
            "give exactly one of --size N or --items FILE "
            "(or, for an app whose items are S3 objects, --input-dir DIR)"
        )
    parsed_parameters = parse_parameters(parameters, option="--parameters")
    local_options = {
        "batch_size": batch_size,
        "max_concurrency": max_concurrency,
        "workers": workers,
        "inject_throttle": inject_throttle,
        "retry_time_scale": retry_time_scale,
        "endpoint_url": endpoint_url,
        "app_dir": app_dir,
        "state_machine": state_machine,
        "synth": synth or None,
        "synth_timeout": synth_timeout,
    }
    backend: Backend
    if is_local:
        if no_wait:
            raise UsageError("--no-wait needs a job on AWS: add --stack NAME or --state-machine-arn ARN")
        backend = _local_backend({**local_options, "input_dir": input_dir})
    else:
        _refuse_local_options(stack, state_machine_arn, input_dir, local_options)
        aws_options = {"region": region, "profile": profile, "execution_name": name}
        if stack is not None:
            backend = AwsBackend.for_stack(stack, poll_seconds=poll_seconds, **aws_options)
        else:
            assert state_machine_arn is not None
            backend = AwsBackend.for_state_machine(
                state_machine_arn, poll_seconds=poll_seconds, **aws_options
            )
    job_input = JobInput.of(size=size, items_file=items, parameters=parsed_parameters)
    try:
        with backend.start(job_input) as job:
            if no_wait:
                typer.echo(job.id)
                return
            _wait_and_print(job, output_dir=output_dir, stats=stats, progress=progress)
    except backend.cannot_start as exc:
        raise UsageError(str(exc)) from exc


def _local_backend(options: dict[str, Any]) -> Backend:
    """The local engine over the app, with the options given (the rest: the app's and the engine's)."""
    # Imported here: the engine (and the CDK it synthesizes with) is not needed for AWS commands.
    from burstmap.client import local_job

    given = {key: value for key, value in options.items() if value is not None}
    return local_job.LocalBackend(
        local_job.LocalOptions(**given), on_synth=lambda synthesis: _say(synthesis.describe())
    )


def _refuse_local_options(
    stack: str | None, state_machine_arn: str | None, input_dir: Path | None, local_options: dict[str, Any]
) -> None:
    """A job on AWS has its construct props deployed: options that only shape a local run are refused."""
    if stack is not None and state_machine_arn is not None:
        raise UsageError("give --stack or --state-machine-arn, not both")
    if input_dir is not None:
        raise UsageError(
            "--input-dir uploads to the local S3 only: for a job on AWS, copy the files under the stack "
            "bucket's input prefix (aws s3 cp DIR s3://BUCKET/INPUT_PREFIX/ --recursive)"
        )
    if local_options.get("state_machine") is not None:
        raise UsageError(
            "--state-machine picks a state machine of the local app: on AWS, name it by its ARN "
            "(--state-machine-arn ARN)"
        )
    given = [_flag(name) for name, value in local_options.items() if value is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} only apply to local runs; on AWS these are set when the stack is deployed "
            "(BurstCompute arguments)"
        )


def _flag(parameter: str) -> str:
    """The option of a `run` parameter (every one is named after it: batch_size -> --batch-size)."""
    return "--" + parameter.replace("_", "-")


def _wait_and_print(job: Job, *, output_dir: Path | None, stats: bool, progress: bool | None) -> None:
    """Follow a job to its end, then print its output (or its failure), locally and on AWS alike."""
    display = progress_display(progress)
    try:
        try:
            job.wait(on_progress=display.update)
        finally:
            display.close()
    except KeyboardInterrupt:
        _say(job.interrupted())
        raise typer.Exit(EXIT_INTERRUPTED) from None
    try:
        output = job.result()  # raises JobFailed, reported by _handles_errors
    except JobFailed:
        if output_dir is not None:
            with contextlib.suppress(NoResults):  # the results so far, if the map ran at all
                job.download_results(output_dir)
        raise
    if output_dir is not None:
        downloaded = job.download_results(output_dir)
        _say(f"results in {downloaded.directory} ({len(downloaded.result_files)} files)")
    if stats and isinstance(output, dict) and "stats" not in output:
        output = {**output, "stats": job.stats()}
    _print_json(output)


def _job(execution_arn: str, region: str | None, profile: str | None, poll_seconds: float = 2.0) -> AwsJob:
    region = region or aws.region_of(execution_arn)
    clients = aws.aws_clients(region=region, profile=profile)
    return AwsJob(execution_arn, clients=clients, poll_seconds=poll_seconds)


# ---------------------------------------------------------------------------------------- operating
@app.command()
@_handles_errors
def status(execution_arn: ExecutionArn, region: Region = None, profile: Profile = None) -> None:
    """Print an execution's status and its map runs' DescribeMapRun counts as JSON."""
    _print_json(_job(execution_arn, region, profile).status_report())


@app.command()
@_handles_errors
def results(
    execution_arn: ExecutionArn,
    output_dir: OutputDir = None,
    region: Region = None,
    profile: Profile = None,
) -> None:
    """Download the manifest, the result files and failed_items.json (default: ./results/<execution name>)."""
    job = _job(execution_arn, region, profile)
    directory = output_dir or Path("results") / execution_arn.rsplit(":", 1)[-1]
    _print_json(job.download_results(directory).summary())


@app.command()
@_handles_errors
def cancel(execution_arn: ExecutionArn, region: Region = None, profile: Profile = None) -> None:
    """Stop a running execution (StopExecution); its running child executions are aborted."""
    stopped = _job(execution_arn, region, profile).cancel()
    _print_json({"executionArn": execution_arn, "status": "ABORTED", "stopDate": stopped})


@app.command()
@_handles_errors
def redrive(
    execution_arn: ExecutionArn,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the redriven execution and print its output.")
    ] = False,
    output_dir: OutputDir = None,
    stats: Stats = False,
    progress: ShowProgress = None,
    poll_seconds: PollSeconds = 2.0,
    region: Region = None,
    profile: Profile = None,
) -> None:
    """Rerun the failed, aborted or timed-out parts of an execution (RedriveExecution, within 14 days)."""
    job = _job(execution_arn, region, profile, poll_seconds)
    redriven = job.redrive()
    if not wait:
        _print_json({"executionArn": execution_arn, "redriveDate": redriven})
        return
    _wait_and_print(job, output_dir=output_dir, stats=stats, progress=progress)


# ---------------------------------------------------------------------------------------- plan
@app.command()
@_handles_errors
def plan(
    size: Size = None,
    items: ItemsFile = None,
    batch_size: BatchSize = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(help="Children at once. Default: the app's, else no limit.", show_default=False),
    ] = None,
    duration_ms: Annotated[
        float, typer.Option("--duration-ms", help="Compute time of one item, measured or guessed.")
    ] = 100.0,
    memory_mb: Annotated[
        int | None,
        typer.Option(help="The compute's memory. Default: the app's, else 1024.", show_default=False),
    ] = None,
    architecture: Annotated[
        str | None, typer.Option(help="arm64 or x86_64. Default: the app's, else arm64.", show_default=False)
    ] = None,
    overhead_ms: Annotated[
        float, typer.Option("--overhead-ms", help="Assumed duration of the start and of the combine Lambda.")
    ] = 1000.0,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices", help=f"JSON file of price overrides (or ${planning.PRICES_ENV}).", show_default=False
        ),
    ] = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="Count states from this ASL definition (JSON) instead of burstmap's.",
            show_default=False,
        ),
    ] = None,
    app_dir: Annotated[
        Path | None,
        typer.Option(help="Read the job and its compute's settings from this CDK app.", show_default=False),
    ] = None,
    state_machine: StateMachine = None,
    synth: Synth = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Estimate what a job will consume on AWS and cost, without running anything."""
    if (size is None) == (items is None):
        raise UsageError("give exactly one of --size N or --items FILE")
    count = size if size is not None else len(read_items_file(items))  # type: ignore[arg-type]
    shape = None
    if definition is not None:
        if app_dir is not None:
            raise UsageError("give --app-dir or --definition, not both")
        try:
            shape = planning.shape_from_definition(json.loads(definition.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read the definition {definition}: {exc}") from exc
    elif app_dir is None and (state_machine is not None or synth):
        raise UsageError("--state-machine and --synth read a CDK app: add --app-dir DIR")
    read: dict[str, Any] = {}
    if app_dir is not None:
        job = _app_job(app_dir, state_machine, synth)
        shape, read = planning.shape_from_definition(job.definition), job.plan_settings()
    result = planning.plan_job(
        items=count,
        batch_size=batch_size or read.get("batch_size", 1),
        max_concurrency=max_concurrency if max_concurrency is not None else read.get("max_concurrency"),
        duration_ms=duration_ms,
        memory_mb=memory_mb or read.get("memory_mb", 1024),
        architecture=architecture or read.get("architecture", "arm64"),  # type: ignore[arg-type]
        overhead_ms=overhead_ms,
        shape=shape,
        prices=planning.load_prices(prices),
        timeout_seconds=read.get("timeout_seconds"),
        source=read.get("source"),
    )
    if as_json:
        _print_json(result.to_json())
    else:
        typer.echo(planning.render(result))


def _app_job(app_dir: Path, state_machine: str | None, synth: bool) -> Any:
    """The app's chosen state machine and compute settings (synthesized or reused, said on stderr)."""
    from burstmap.client.local_app import app_job  # the engine and CDK: only for --app-dir
    from burstmap.local.app.errors import AssemblyError

    try:
        return app_job(app_dir, state_machine, force_synth=synth, on_synth=lambda done: _say(done.describe()))
    except AssemblyError as exc:
        raise UsageError(str(exc)) from exc


def main() -> None:
    """Console script entry point."""
    app(prog_name="burstmap")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
