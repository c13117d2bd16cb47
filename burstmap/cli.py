"""`burstmap run | plan | status | results | cancel | redrive`.

`run` is local by default (the example app's state machine on this machine) and on AWS with
``--stack NAME`` or ``--state-machine-arn ARN``; both print the execution output as one JSON object on
stdout, progress on stderr, and exit non-zero when the execution fails.

Exit codes: 0 success; 1 the execution failed (its error and cause are on stderr); 2 bad usage, a bad
input or an AWS error (one line on stderr, no traceback); 130 / 143 interrupted by SIGINT / SIGTERM (a
remote job keeps running on AWS). The one-line answers are burstmap.cli_errors'.

Progress: a live bar on stderr when stderr is a terminal; nothing otherwise, unless ``--progress``
asks for it, in which case plain lines (``burstmap: 512/1024 items (50.0%), ...``) are written every
10 seconds and once at the end, which suits CI logs. ``--no-progress`` hides it everywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from burstmap import __version__
from burstmap.cli_errors import (
    EXIT_FAILED,
    OneLineUsageErrors,
    UsageError,
    count,
    flag,
    handles_errors,
    interrupted_exit_code,
    listed,
    report_failure,
    say,
    stop_on_signals,
)
from burstmap.cli_options import (
    AppDir,
    BatchSize,
    EndpointUrl,
    ExecutionArn,
    ExecutionName,
    InjectThrottle,
    InputDir,
    ItemsFile,
    MaxConcurrency,
    NoWait,
    OutputDir,
    Parameters,
    PollSeconds,
    Profile,
    Region,
    RetryTimeScale,
    ShowProgress,
    Size,
    Stack,
    StateMachine,
    StateMachineArn,
    Stats,
    Synth,
    SynthTimeout,
    Workers,
)
from burstmap.client import aws
from burstmap.client import plan as planning
from burstmap.client.aws_job import DEFAULT_POLL_SECONDS, AwsBackend, AwsJob, checked_poll_seconds
from burstmap.client.job import Backend, Job, JobFailed
from burstmap.client.job_input import InvalidArgument, JobInput, parse_parameters, read_items_file
from burstmap.client.output_dir import OutputDir as OutputDirectory
from burstmap.client.progress import progress_display
from burstmap.serve.command import serve as serve_command

app = typer.Typer(
    name="burstmap",
    cls=OneLineUsageErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: an option with a value shows its label (--size N), a flag none (--stats).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"burstmap {__version__}")
        raise typer.Exit()


@app.callback()
def _burstmap(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print burstmap's version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Run embarrassingly parallel jobs on Step Functions Distributed Map, locally or on AWS."""


# ---------------------------------------------------------------------------------------- options
# Declared once, shared by the commands that take them.
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
@handles_errors
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
    poll_seconds: PollSeconds = None,
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
    job_input = JobInput.of(size=size, items_file=items, parameters=parse_parameters(parameters))
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
    if no_wait and output_dir is not None:
        raise UsageError(
            "--output-dir needs the job's end: drop --no-wait, or fetch them once it ended with "
            "`burstmap results EXECUTION_ARN --output-dir DIR`"
        )
    backend: Backend | None = None
    if is_local:
        aws_only = {"no_wait": no_wait or None, "poll_seconds": poll_seconds, "name": name, "region": region}
        given = [
            flag(option) for option, value in {**aws_only, "profile": profile}.items() if value is not None
        ]
        if given:
            raise UsageError(f"{listed(given)} to jobs on AWS: add --stack NAME or --state-machine-arn ARN")
        backend = _local_backend({**local_options, "input_dir": input_dir})
    else:
        _refuse_local_options(stack, state_machine_arn, input_dir, local_options)
        poll_seconds = checked_poll_seconds(DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds)
    with _claimed(output_dir) as output:  # before synth or any AWS call: a bad folder answers at once
        if backend is None:
            aws_options = {"region": region, "profile": profile, "execution_name": name}
            if stack is not None:
                backend = AwsBackend.for_stack(stack, poll_seconds=poll_seconds, **aws_options)
            else:
                assert state_machine_arn is not None
                backend = AwsBackend.for_state_machine(
                    state_machine_arn, poll_seconds=poll_seconds, **aws_options
                )
        try:
            with backend.start(job_input) as job:
                if no_wait:
                    typer.echo(job.id)
                    return
                _wait_and_print(job, output=output, stats=stats, progress=progress)
        except InvalidArgument:
            raise  # worded for its option by handles_errors
        except backend.cannot_start as exc:
            raise UsageError(str(exc)) from exc


def _claimed(output_dir: Path | None) -> contextlib.AbstractContextManager[OutputDirectory | None]:
    """The --output-dir folder, checked and locked for the whole run (nothing without the option)."""
    return contextlib.nullcontext() if output_dir is None else OutputDirectory.claim(output_dir)


def _local_backend(options: dict[str, Any]) -> Backend:
    """The local engine over the app, with the options given (the rest: the app's and the engine's)."""
    # Imported here: the engine (and the CDK it synthesizes with) is not needed for AWS commands.
    from burstmap.client import local_job

    given = {key: value for key, value in options.items() if value is not None}
    return local_job.LocalBackend(
        local_job.LocalOptions(**given), on_synth=lambda synthesis: say(synthesis.describe())
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
    given = [flag(name) for name, value in local_options.items() if value is not None]
    if given:
        raise UsageError(
            f"{listed(given)} to local runs; on AWS these are set when the stack is deployed "
            "(BurstCompute arguments)"
        )


def _wait_and_print(job: Job, *, output: OutputDirectory | None, stats: bool, progress: bool | None) -> None:
    """Follow a job to its end, then print its output (or its failure), locally and on AWS alike.

    With --output-dir the results replace the folder's as a whole, also when the job failed (what it got
    to: the FAILED files say why); the printed output then names the files (``output_dir``): a local
    run's ``manifest`` is on an S3 server that stops with the run. --stats goes to stderr on failure.
    """
    display = progress_display(progress)
    try:
        try:
            job.wait(on_progress=display.update)
        finally:
            display.close()
    except KeyboardInterrupt as interrupt:
        say(f"interrupted: {job.interrupted()}")
        raise typer.Exit(interrupted_exit_code(interrupt)) from None
    try:
        result = job.result()
    except JobFailed as failed:
        report_failure(failed)
        if output is not None:
            written = job.save_results(output)
            say(f"results so far in {written.directory} ({count(written.files, 'file')})")
        if stats:
            say(f"stats {json.dumps(job.stats(), default=_json_default)}")
        raise typer.Exit(EXIT_FAILED) from None
    if output is not None:
        written = job.save_results(output)
        say(f"results in {written.directory} ({count(written.files, 'file')})")
        if isinstance(result, dict):
            result = {**result, "output_dir": written.summary()}
    if stats and isinstance(result, dict) and "stats" not in result:
        result = {**result, "stats": job.stats()}
    _print_json(result)


def _job(
    execution_arn: str, region: str | None, profile: str | None, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> AwsJob:
    region = region or aws.region_of(execution_arn)
    clients = aws.aws_clients(region=region, profile=profile)
    return AwsJob(execution_arn, clients=clients, poll_seconds=poll_seconds)


# ---------------------------------------------------------------------------------------- operating
@app.command()
@handles_errors
def status(execution_arn: ExecutionArn, region: Region = None, profile: Profile = None) -> None:
    """Print an execution's status and its map runs' DescribeMapRun counts as JSON."""
    _print_json(_job(execution_arn, region, profile).status_report())


@app.command()
@handles_errors
def results(
    execution_arn: ExecutionArn,
    output_dir: OutputDir = None,
    region: Region = None,
    profile: Profile = None,
) -> None:
    """Download the manifest, the result files and failed_items.json (default: ./results/<execution name>)."""
    job = _job(execution_arn, region, profile)
    directory = output_dir or Path("results") / execution_arn.rsplit(":", 1)[-1]
    with OutputDirectory.claim(directory) as output:
        _print_json(job.download_results(output).summary())


@app.command()
@handles_errors
def cancel(execution_arn: ExecutionArn, region: Region = None, profile: Profile = None) -> None:
    """Stop a running execution (StopExecution); its running child executions are aborted."""
    stopped = _job(execution_arn, region, profile).cancel()
    _print_json({"executionArn": execution_arn, "status": "ABORTED", "stopDate": stopped})


@app.command()
@handles_errors
def redrive(
    execution_arn: ExecutionArn,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the redriven execution and print its output.")
    ] = False,
    output_dir: OutputDir = None,
    stats: Stats = False,
    progress: ShowProgress = None,
    poll_seconds: PollSeconds = None,
    region: Region = None,
    profile: Profile = None,
) -> None:
    """Rerun the failed, aborted or timed-out parts of an execution (RedriveExecution, within 14 days)."""
    if output_dir is not None and not wait:
        raise UsageError("--output-dir needs the job's end: add --wait")
    job = _job(execution_arn, region, profile, DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds)
    with _claimed(output_dir) as output:
        redriven = job.redrive()
        if not wait:
            _print_json({"executionArn": execution_arn, "redriveDate": redriven})
            return
        _wait_and_print(job, output=output, stats=stats, progress=progress)


# ---------------------------------------------------------------------------------------- plan
@app.command()
@handles_errors
def plan(
    size: Size = None,
    items: ItemsFile = None,
    batch_size: BatchSize = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency",
            metavar="N",
            help="Children at once. Default: the app's, else no limit.",
            show_default=False,
        ),
    ] = None,
    duration_ms: Annotated[
        float,
        typer.Option("--duration-ms", metavar="MS", help="Compute time of one item, measured or guessed."),
    ] = 100.0,
    memory_mb: Annotated[
        int | None,
        typer.Option(
            "--memory-mb",
            metavar="MB",
            help="The compute's memory. Default: the app's, else 1024.",
            show_default=False,
        ),
    ] = None,
    architecture: Annotated[
        str | None,
        typer.Option(
            "--architecture",
            metavar="ARCH",
            help="arm64 or x86_64. Default: the app's, else arm64.",
            show_default=False,
        ),
    ] = None,
    overhead_ms: Annotated[
        float,
        typer.Option(
            "--overhead-ms", metavar="MS", help="Assumed duration of the start and of the combine Lambda."
        ),
    ] = 1000.0,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            metavar="FILE",
            help=f"JSON file of price overrides (or ${planning.PRICES_ENV}).",
            show_default=False,
        ),
    ] = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            metavar="FILE",
            help="Count states from this ASL definition (JSON) instead of burstmap's.",
            show_default=False,
        ),
    ] = None,
    app_dir: Annotated[
        Path | None,
        typer.Option(
            "--app-dir",
            metavar="DIR",
            help="Read the job and its compute's settings from this CDK app.",
            show_default=False,
        ),
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
            document = json.loads(definition.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            raise UsageError(f"cannot read the definition {definition}: {exc}") from exc
        shape = planning.shape_from_definition(document)
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
        return app_job(app_dir, state_machine, force_synth=synth, on_synth=lambda done: say(done.describe()))
    except AssemblyError as exc:
        raise UsageError(str(exc)) from exc


app.command(name="serve")(serve_command)


def log_to_stderr() -> None:
    """Show burstmap's notices (a dependency install, an unenforced MemorySize, what serve restored) on
    stderr as ``burstmap: ...`` lines; else Python drops the INFO ones, prints the rest bare."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("burstmap: %(message)s"))
    logger = logging.getLogger("burstmap")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main() -> None:
    """Console script entry point."""
    stop_on_signals()
    log_to_stderr()
    app(prog_name="burstmap")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
