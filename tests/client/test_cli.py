"""`burstmap` through typer's CliRunner: local runs (engine faked), AWS runs (moto + Stubber), plan."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_fakes import (
    BUCKET,
    EXECUTION_ARN,
    MACHINE_ARN,
    MAP_RUN_ARN,
    REGION,
    child_record,
    describe_map_run,
    describe_state_machine,
    execution,
    finish_moto_execution,
    lambda_cause,
    list_map_runs,
    put_results,
    stubbed_sfn,
)
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from burstmap.cli import app
from burstmap.client import local_job
from burstmap.client.job import Job, JobFailed
from burstmap.client.job_input import JobInput, JobInputError
from burstmap.client.local_job import LocalOptions
from burstmap.client.progress import LineProgress, NoProgress, RichProgress, progress_display
from burstmap.client.results import DownloadedResults
from burstmap.local.core.progress import Progress


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def one_line(text: str) -> str:
    """The single stderr line of an error (fails if there are more, or a traceback)."""
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------------------------------ local run
class FakeLocalJob(Job):
    """Stands in for the engine: reports the given progress, then ends with the given output or failure."""

    def __init__(
        self,
        output: Any = None,
        *,
        failure: JobFailed | None = None,
        updates: list[Progress] | None = None,
        stats: dict[str, Any] | None = None,
        raises_in_wait: BaseException | None = None,
    ) -> None:
        self.output = output
        self.failure = failure
        self.updates = updates or []
        self.run_stats = stats or {}
        self.raises_in_wait = raises_in_wait
        self.downloaded_to: Path | None = None
        self.closed = False

    @property
    def id(self) -> str:
        return "arn:aws:states:us-east-1:111111111111:execution:Local:fake"

    def wait(self, *, on_progress=None) -> None:
        for update in self.updates:
            on_progress(update)
        if self.raises_in_wait is not None:
            raise self.raises_in_wait

    def progress(self) -> Progress:
        return self.updates[-1] if self.updates else Progress(total=None)

    def result(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return self.output

    def stats(self) -> dict[str, Any]:
        return self.run_stats

    def interrupted(self) -> str:
        return "the local job was stopped"

    def _write_results(self, directory: Path) -> DownloadedResults:
        self.downloaded_to = directory
        manifest = directory / "manifest.json"
        manifest.write_text("{}")
        return DownloadedResults(directory=directory, manifest=manifest, manifests=[manifest])

    def _results_s3(self) -> Any:
        return None

    def _manifests(self) -> list:
        return []

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def local_engine(monkeypatch):
    """Replace the local backend's start (the real LocalBackend otherwise, its ``cannot_start`` included):
    ``started = local_engine(job_or_error)`` records the options and the job input it was given."""

    def install(job_or_error: Job | BaseException) -> dict[str, Any]:
        started: dict[str, Any] = {}

        def start(backend: local_job.LocalBackend, job_input: JobInput) -> Job:
            started.update(options=backend.options, job_input=job_input)
            if isinstance(job_or_error, BaseException):
                raise job_or_error
            return job_or_error

        monkeypatch.setattr(local_job.LocalBackend, "start", start)
        return started

    return install


def test_local_run_maps_every_option_and_prints_one_json_object(runner, local_engine, tmp_path: Path):
    job = FakeLocalJob({"total_sum": "28", "succeeded": 8}, stats={"wall_seconds": 1.5})
    started = local_engine(job)
    items = tmp_path / "items.json"
    items.write_text("[1, 2]")
    result = runner.invoke(
        app,
        [
            "run", "--items", str(items), "--parameters", '{"scale": 2}', "--batch-size", "4",
            "--max-concurrency", "8", "--workers", "2", "--output-dir", str(tmp_path / "out"), "--stats",
            "--inject-throttle", "0.3", "--retry-time-scale", "0", "--endpoint-url", "http://127.0.0.1:9000",
            "--app-dir", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    assert json.loads(result.stdout) == {
        "total_sum": "28",
        "succeeded": 8,
        "output_dir": {
            "directory": str(out),
            "manifest": str(out / "manifest.json"),
            "result_files": [],
            "failed_items": None,
            "failed_count": 0,
        },
        "stats": {"wall_seconds": 1.5},
    }
    assert len(result.stdout.strip().splitlines()) == 1
    assert result.stderr.splitlines() == [f"burstmap: results in {out} (1 file)"]
    assert started["job_input"] == JobInput({"items": [1, 2], "parameters": {"scale": 2}}, "items_file")
    assert started["options"] == LocalOptions(
        batch_size=4,
        max_concurrency=8,
        workers=2,
        inject_throttle=0.3,
        retry_time_scale=0.0,
        endpoint_url="http://127.0.0.1:9000",
        app_dir=tmp_path,
    )
    assert job.downloaded_to.parent == tmp_path  # written beside the folder, then swapped in
    assert sorted(path.name for path in out.iterdir()) == [".burstmap-output", "manifest.json"]
    assert job.closed


def test_local_run_leaves_unset_options_to_the_engine_defaults(runner, local_engine):
    started = local_engine(FakeLocalJob({"total_sum": "0"}, stats={"wall_seconds": 1.5}))
    result = runner.invoke(app, ["run", "--size", "8"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"total_sum": "0"}  # no stats unless asked
    assert started["job_input"] == JobInput({"size": 8}, "size")
    assert started["options"] == LocalOptions()


def test_state_machine_picks_one_of_the_apps_jobs(runner, local_engine):
    started = local_engine(FakeLocalJob({"total_sum": "0"}))
    result = runner.invoke(app, ["run", "--size", "8", "--state-machine", "MyStack/JobB"])
    assert result.exit_code == 0, result.stderr
    assert started["options"] == LocalOptions(state_machine="MyStack/JobB")


def test_state_machine_is_refused_for_a_job_on_aws(runner):
    result = runner.invoke(app, ["run", "--size", "8", "--stack", "S", "--state-machine", "MyStack/JobB"])
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "burstmap: --state-machine picks a state machine of the local app: on AWS, name it by its ARN "
        "(--state-machine-arn ARN)"
    )


def test_local_failure_prints_error_and_cause_and_exits_1(runner, local_engine):
    cause = lambda_cause("size must be a non-negative integer, got -5", "InvalidInput")
    local_engine(FakeLocalJob(failure=JobFailed("arn:local", "FAILED", "InvalidInput", cause)))
    result = runner.invoke(app, ["run", "--size", "-5"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        "burstmap: execution FAILED: InvalidInput: size must be a non-negative integer, got -5"
    )


def test_local_job_that_cannot_start_is_one_line_exit_2(runner, local_engine):
    started = local_engine(FakeLocalJob({"total_sum": "0"}))
    result = runner.invoke(app, ["run", "--items", "nope.json"])
    assert result.exit_code == 2
    assert (
        one_line(result.stderr) == "burstmap: --items nope.json: cannot be read (No such file or directory)"
    )
    assert started == {}  # refused before the engine was asked


def _cannot_start_errors() -> list[Exception]:
    from burstmap.local import InputTooLarge
    from burstmap.local.app.errors import AssemblyError, SynthesisError, UnresolvableToken
    from burstmap.local.core.errors import DefinitionError, UnsupportedFeature
    from burstmap.local.services.lambda_runtime import LambdaConfigurationError
    from burstmap.local.services.s3 import LocalS3Error

    return [
        JobInputError("workers must be 1 or more, got 0"),
        AssemblyError("the assembly in cdk.out has 2 state machines (A, B): name one by its logical id"),
        SynthesisError("synthesizing the CDK app failed (python app.py in /app, exit 1); fix the app"),
        UnresolvableToken("S", "Fn", "Environment.Variables.X", {"Fn::ImportValue": "x"}, "not local"),
        UnsupportedFeature("not supported locally: 'Credentials' in state 'Compute'"),
        DefinitionError("state 'Compute' needs a Type"),
        InputTooLarge("the execution input is larger than 256 KiB: pass large item lists through S3"),
        LambdaConfigurationError("function 'f' is defined twice"),
        LocalS3Error("moto's S3 server did not start; check that moto[server] is installed"),
    ]


@pytest.mark.parametrize("when", ["start", "wait"])
@pytest.mark.parametrize("error", _cannot_start_errors(), ids=lambda error: type(error).__name__)
def test_every_reason_a_local_job_cannot_start_is_one_line_exit_2(runner, local_engine, error, when):
    """Raised while the backend prepares the job, or when the engine starts the execution."""
    job = FakeLocalJob(raises_in_wait=error)
    local_engine(error if when == "start" else job)
    result = runner.invoke(app, ["run", "--size", "3"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == f"burstmap: {error}"
    assert job.closed == (when == "wait")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "give exactly one of --size N or --items FILE"),
        (["run", "--size", "3", "--items", "x.json"], "give exactly one of --size N or --items FILE"),
        (["run", "--size", "3", "--no-wait"], "--no-wait applies only to jobs on AWS: add --stack NAME"),
        (
            ["run", "--size", "3", "--name", "x", "--poll-seconds", "1"],
            "--poll-seconds, --name apply only to jobs on AWS: add --stack NAME",
        ),
        (["run", "--size", "3", "--parameters", "[1]"], "--parameters '[1]': must be a JSON object"),
        (["run", "--size", "3", "--parameters", "{oops"], "--parameters '{oops': not JSON"),
        (
            ["run", "--size", "3", "--stack", "s", "--batch-size", "2", "--workers", "2"],
            "--batch-size, --workers apply only to local runs; on AWS these are set when the stack is",
        ),
        (["run", "--size", "3", "--stack", "s", "--state-machine-arn", MACHINE_ARN], "not both"),
    ],
)
def test_bad_option_combinations_exit_2_with_one_line(runner, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in one_line(result.stderr)


def test_a_failed_local_job_still_writes_its_results_and_prints_its_stats(runner, local_engine, tmp_path):
    job = FakeLocalJob(
        failure=JobFailed("arn:local", "FAILED", "States.Runtime", "it broke"), stats={"wall_seconds": 2.5}
    )
    local_engine(job)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", "--size", "3", "--output-dir", str(out), "--stats"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "burstmap: execution FAILED: States.Runtime: it broke",
        f"burstmap: results so far in {out} (1 file)",
        'burstmap: stats {"wall_seconds": 2.5}',
    ]
    assert (out / "manifest.json").is_file() and job.closed


def test_interrupting_a_local_job_stops_it_and_exits_130(runner, local_engine):
    job = FakeLocalJob(raises_in_wait=KeyboardInterrupt())
    local_engine(job)
    result = runner.invoke(app, ["run", "--size", "3", "--no-progress"])
    assert result.exit_code == 130
    assert one_line(result.stderr) == "burstmap: interrupted: the local job was stopped"
    assert job.closed


def test_progress_lines_when_stderr_is_not_a_terminal(runner, local_engine):
    updates = [
        Progress(total=4, succeeded=2, running=2, elapsed_seconds=1.0, children_running=2),
        Progress(total=4, succeeded=3, running=1, retries=5, elapsed_seconds=1.5, children_running=1),
        Progress(total=4, succeeded=3, failed=1, retries=5, elapsed_seconds=2.0, children_running=0),
    ]
    local_engine(FakeLocalJob({"total_sum": "6"}, updates=updates))
    shown = runner.invoke(app, ["run", "--size", "4"])
    assert shown.exit_code == 0
    # The first update at once, then at most one line per 10 s, and the final counts on close.
    assert shown.stderr.splitlines() == [
        "burstmap: 2/4 items (50.0%), 2.0 items/s, 2 running, 0 retries, 0 failed, 1.0s",
        "burstmap: 4/4 items (100.0%), 2.0 items/s, 0 running, 5 retries, 1 failed, 2.0s",
    ]
    assert json.loads(shown.stdout) == {"total_sum": "6"}

    hidden = runner.invoke(app, ["run", "--size", "4", "--no-progress"])
    assert hidden.exit_code == 0 and hidden.stderr == ""


@pytest.mark.slow
def test_real_local_run_rejects_a_negative_size(runner, tmp_path):
    """The real engine and the example app: `--size -5` fails the execution with InvalidInput, exit 1."""
    app_dir = Path(__file__).resolve().parents[2]
    result = runner.invoke(app, ["run", "--size", "-5", "--app-dir", str(app_dir), "--retry-time-scale", "0"])
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    synth_line, *rest = result.stderr.splitlines()
    assert synth_line.startswith(("burstmap: synthesized ", "burstmap: reused the assembly in cdk.out/"))
    assert rest[0].startswith("burstmap: execution FAILED: InvalidInput: ")


# ------------------------------------------------------------------------------------------ AWS run
def test_no_wait_starts_the_stack_state_machine_and_prints_the_arn(runner, stack):
    result = runner.invoke(
        app, ["run", "--stack", "burstmap-demo", "--size", "3", "--parameters", '{"k": 1}', "--no-wait"]
    )
    assert result.exit_code == 0, result.stderr
    execution_arn = result.stdout.strip()
    assert execution_arn.startswith(stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_execution(executionArn=execution_arn)
    assert described["status"] == "RUNNING"
    assert json.loads(described["input"]) == {"size": 3, "parameters": {"k": 1}}


def test_objects_mode_stack_starts_with_no_items_and_only_the_parameters(runner, stack):
    result = runner.invoke(app, ["run", "--stack", "burstmap-demo", "--parameters", '{"k": 1}', "--no-wait"])
    assert result.exit_code == 0, result.stderr
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert json.loads(sfn.describe_execution(executionArn=result.stdout.strip())["input"]) == {
        "parameters": {"k": 1}
    }


def test_no_wait_with_a_state_machine_arn(runner, stack):
    result = runner.invoke(
        app,
        [
            "run",
            "--state-machine-arn",
            stack.state_machine_arn,
            "--items",
            _items_file(),
            "--no-wait",
        ],
    )
    assert result.exit_code == 0, result.stderr
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert json.loads(sfn.describe_execution(executionArn=result.stdout.strip())["input"]) == {
        "items": [1, "a"]
    }


def _items_file() -> str:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "items.jsonl"
    path.write_text('1\n"a"\n')
    return str(path)


def _start_and_follow(stubber, final: dict[str, Any]) -> None:
    stubber.add_response(
        "start_execution", {"executionArn": EXECUTION_ARN, "startDate": execution("RUNNING")["startDate"]}
    )
    stubber.add_response("describe_execution", execution("RUNNING"))
    stubber.add_response("list_map_runs", list_map_runs())
    stubber.add_response("describe_map_run", describe_map_run(succeeded=1, running=3, total=4))
    stubber.add_response("describe_execution", final)
    stubber.add_response("list_map_runs", list_map_runs())


def test_remote_run_shows_progress_waits_and_prints_the_output_with_stats(runner, use_clients):
    sfn, stubber = stubbed_sfn()
    _start_and_follow(stubber, execution("SUCCEEDED", output={"total_sum": "6", "succeeded": 4}, seconds=8))
    stubber.add_response("describe_map_run", describe_map_run(succeeded=4, total=4, status="SUCCEEDED"))
    use_clients(sfn)
    result = runner.invoke(
        app,
        [
            "run",
            "--state-machine-arn",
            MACHINE_ARN,
            "--size",
            "4",
            "--stats",
            "--progress",
            "--poll-seconds",
            "0",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "total_sum": "6",
        "succeeded": 4,
        "stats": {"wall_seconds": 8.0, "items_total": 4, "items_succeeded": 4, "items_failed": 0},
    }
    lines = result.stderr.splitlines()
    assert lines[0].startswith("burstmap: 1/4 items (25.0%), ")
    assert lines[-1] == "burstmap: 4/4 items (100.0%), 0.5 items/s, 0 running, 0 retries, 0 failed, 8.0s"
    stubber.assert_no_pending_responses()


def test_remote_failure_names_the_first_failing_item_and_exits_1(runner, use_clients):
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        put_results(
            s3,
            succeeded=[child_record(0, 0, output=0)],
            failed=[
                child_record(1, 1, error="ValueError", cause=lambda_cause("item 1 is odd")),
                child_record(3, 3, error="ValueError", cause=lambda_cause("item 3 is odd")),
                child_record(5, 5, error="ValueError", cause=lambda_cause("item 5 is odd")),
            ],
        )
        sfn, stubber = stubbed_sfn()
        failed = execution(
            "FAILED",
            error="States.ExceedToleratedFailureThreshold",
            cause="The specified tolerated failure threshold was exceeded",
        )
        _start_and_follow(stubber, failed)
        stubber.add_response(
            "describe_map_run", describe_map_run(succeeded=1, failed=3, total=4, status="FAILED")
        )
        stubber.add_response("describe_state_machine", describe_state_machine())
        stubber.add_response("list_map_runs", list_map_runs())
        use_clients(sfn, s3=s3)
        result = runner.invoke(
            app,
            ["run", "--state-machine-arn", MACHINE_ARN, "--size", "4", "--poll-seconds", "0"]
            + ["--no-progress"],
        )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "burstmap: execution FAILED: States.ExceedToleratedFailureThreshold: "
        "The specified tolerated failure threshold was exceeded",
        "burstmap: first failing item 1: ValueError: item 1 is odd (2 other items failed)",
    ]


def test_interrupting_a_remote_run_leaves_the_job_running_and_says_how_to_stop_it(runner, use_clients):
    class InterruptedWhileWaiting:
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            return {"executionArn": EXECUTION_ARN}

        def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
            raise KeyboardInterrupt

    use_clients(InterruptedWhileWaiting())
    result = runner.invoke(app, ["run", "--state-machine-arn", MACHINE_ARN, "--size", "4", "--no-progress"])
    assert result.exit_code == 130
    assert (
        one_line(result.stderr)
        == f"burstmap: interrupted: still running on AWS: `burstmap cancel {EXECUTION_ARN}` stops it"
    )


# ------------------------------------------------------------------------------------------ operating
def test_status_prints_describe_map_run_counts(runner, use_clients):
    sfn, stubber = stubbed_sfn()
    stubber.add_response("describe_execution", execution("RUNNING"))
    stubber.add_response("list_map_runs", list_map_runs())
    stubber.add_response("describe_map_run", describe_map_run(succeeded=2, failed=1, running=1, total=4))
    use_clients(sfn)
    result = runner.invoke(app, ["status", EXECUTION_ARN])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "RUNNING" and status["stopDate"] is None
    assert status["mapRuns"][0]["mapRunArn"] == MAP_RUN_ARN
    assert status["mapRuns"][0]["itemCounts"]["succeeded"] == 2
    assert status["mapRuns"][0]["itemCounts"]["failed"] == 1


def test_results_downloads_manifest_files_and_failed_items(runner, stack, tmp_path: Path):
    s3 = boto3.client("s3", region_name=REGION)
    manifest = put_results(
        s3,
        succeeded=[child_record(0, "a", output=1)],
        failed=[child_record(1, "b", error="KeyError", cause=lambda_cause("'b'", "KeyError"))],
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, input='{"size": 2}')["executionArn"]
    finish_moto_execution(arn, "SUCCEEDED", output={"total_sum": "1", "manifest": manifest})
    result = runner.invoke(app, ["results", arn, "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failed_count"] == 1
    assert sorted(Path(p).name for p in summary["result_files"]) == ["FAILED_0.json", "SUCCEEDED_0.json"]
    assert json.loads((tmp_path / "r" / "failed_items.json").read_text())[0]["item"] == "b"
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["DestinationBucket"] == BUCKET


def test_cancel_stops_the_execution(runner, stack):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, input='{"size": 2}')["executionArn"]
    result = runner.invoke(app, ["cancel", arn])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "ABORTED"
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_redrive_calls_redrive_execution(runner, use_clients):
    sfn, stubber = stubbed_sfn()
    stubber.add_response("redrive_execution", {"redriveDate": execution("FAILED")["startDate"]})
    use_clients(sfn)
    result = runner.invoke(app, ["redrive", EXECUTION_ARN])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "executionArn": EXECUTION_ARN,
        "redriveDate": "2026-11-23T10:00:00+00:00",
    }
    stubber.assert_no_pending_responses()


# ------------------------------------------------------------------------------------------ AWS errors
@pytest.mark.usefixtures("no_credentials")
def test_no_credentials_is_one_line_exit_2(runner):
    result = runner.invoke(app, ["status", EXECUTION_ARN])
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith("burstmap: no AWS credentials found: run `aws configure`")


def test_stack_not_found_is_one_line_exit_2(runner):
    with mock_aws():
        result = runner.invoke(app, ["run", "--stack", "missing", "--size", "3"])
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "burstmap: stack 'missing' not found in us-east-1: deploy it with `cdk deploy`, "
        "or pass --region / --state-machine-arn"
    )


def test_access_denied_is_one_line_exit_2(runner, use_clients):
    sfn, stubber = stubbed_sfn()
    stubber.add_client_error(
        "stop_execution", "AccessDeniedException", "not authorized to perform: states:StopExecution", 400
    )
    use_clients(sfn)
    result = runner.invoke(app, ["cancel", EXECUTION_ARN])
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith(f"burstmap: access denied: StopExecution on execution {EXECUTION_ARN}")


def test_throttling_after_retries_is_one_line_exit_2(runner, use_clients):
    sfn, stubber = stubbed_sfn()
    stubber.add_client_error(
        "describe_execution", "ThrottlingException", "Rate exceeded", 400,
        response_meta={"RetryAttempts": 7},
    )  # fmt: skip
    use_clients(sfn)
    result = runner.invoke(app, ["status", EXECUTION_ARN])
    assert result.exit_code == 2
    assert one_line(result.stderr).endswith("after 8 attempts; wait a minute and try again")


def test_not_an_arn_is_refused(runner):
    result = runner.invoke(app, ["status", "job-1"])
    assert result.exit_code == 2
    assert "not an ARN: 'job-1'" in one_line(result.stderr)


# ------------------------------------------------------------------------------------------ plan
def test_plan_json_matches_the_hand_computed_case(runner):
    result = runner.invoke(
        app,
        [
            "plan",
            "--size",
            "1000",
            "--batch-size",
            "10",
            "--duration-ms",
            "200",
            "--memory-mb",
            "1024",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["child_executions"] == 100
    assert plan["state_transitions"] == 204
    assert plan["lambda_invocations"] == 102
    assert plan["lambda_gb_seconds"] == "202"
    assert plan["cost_usd"]["total"] == "0.0078137468"


def test_plan_table_and_price_override(runner, tmp_path: Path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"region": "eu-west-1", "sfn_standard_per_transition": "0.001"}))
    result = runner.invoke(app, ["plan", "--size", "10", "--prices", str(prices)])
    assert result.exit_code == 0, result.stderr
    assert "state transitions    24   $0.024000" in result.stdout
    assert "prices: eu-west-1" in result.stdout


def test_plan_counts_an_items_file_and_refuses_bad_values(runner, tmp_path: Path):
    items = tmp_path / "items.jsonl"
    items.write_text("1\n2\n3\n")
    counted = runner.invoke(app, ["plan", "--items", str(items), "--json"])
    assert json.loads(counted.stdout)["child_executions"] == 3
    refused = runner.invoke(app, ["plan", "--size", "10", "--memory-mb", "64"])
    assert refused.exit_code == 2
    assert (
        one_line(refused.stderr)
        == "burstmap: --memory-mb must be between 128 and 10240 (Lambda's range), got 64"
    )


# ------------------------------------------------------------------------------------------ progress display
class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self._terminal = terminal

    def isatty(self) -> bool:
        return self._terminal


@pytest.mark.parametrize(
    ("mode", "terminal", "kind"),
    [
        (None, True, RichProgress),
        (None, False, LineProgress),
        (True, False, LineProgress),
        (True, True, RichProgress),
        (False, True, NoProgress),
    ],
)
def test_progress_display_follows_the_terminal_and_the_flag(mode, terminal, kind):
    display = progress_display(mode, _Stream(terminal))
    try:
        assert isinstance(display, kind)
    finally:
        display.close()


def test_rich_bar_shows_done_of_total_rate_retries_and_failures():
    stream = _Stream(True)
    bar = RichProgress(Console(file=stream, force_terminal=True, width=150))
    bar.update(Progress(total=4, succeeded=2, failed=1, running=1, retries=7, elapsed_seconds=2.0))
    bar.close()
    shown = stream.getvalue()
    assert "3/4" in shown
    assert "1.5 items/s" in shown
    assert "7 retries" in shown and "1 failed" in shown


def test_line_progress_waits_its_interval_between_lines():
    stream = _Stream(False)
    now = [0.0]
    lines = LineProgress(stream, interval_seconds=10, clock=lambda: now[0])
    for second, done in ((0, 1), (5, 2), (11, 3), (12, 4)):
        now[0] = float(second)
        lines.update(Progress(total=4, succeeded=done, elapsed_seconds=float(second)))
    lines.close()
    assert [line.split(" items")[0] for line in stream.getvalue().splitlines()] == [
        "burstmap: 1/4",
        "burstmap: 3/4",
        "burstmap: 4/4",
    ]


# ------------------------------------------------------------------------------------------ help and usage
def _commands() -> list[Any]:
    import typer.main

    group = typer.main.get_command(app)
    return [group, *group.commands.values()]  # type: ignore[attr-defined]


def test_every_option_with_a_value_has_an_upper_case_label_and_flags_have_none():
    """--size N, --items FILE, --output-dir DIR, ...; --stats and --progress/--no-progress alone. A new
    option without a label fails here (typer's default labels, <int> or <path>, are not the CLI's)."""
    for command in _commands():
        for param in command.params:
            if param.param_type_name != "option":
                continue
            if param.is_flag:
                assert param.metavar in (None, ""), (command.name, param.opts)
            else:
                assert param.metavar and param.metavar.isupper(), (command.name, param.opts, param.metavar)


def test_help_shows_flags_as_flags_and_values_by_their_label(runner):
    shown = runner.invoke(app, ["run", "-h"])
    assert shown.exit_code == 0
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip().startswith("-")}
    assert lines["--stats"].split()[1] == "Add"  # no value label
    assert lines["--progress"].split()[:3] == ["--progress", "/", "--no-progress"]
    assert lines["--size"].split()[1] == "N" and lines["--output-dir"].split()[1] == "DIR"
    assert lines["--retry-time-scale"].split()[1] == "FACTOR"
    assert not {"<int>", "<path>", "<bool>", "<str>", "<float>"} & set(shown.stdout.split())
    assert runner.invoke(app, ["run", "--help"]).stdout == shown.stdout


def test_version(runner):
    from burstmap import __version__

    shown = runner.invoke(app, ["--version"])
    assert (shown.exit_code, shown.stdout) == (0, f"burstmap {__version__}\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "--stats", "true"], "Got unexpected extra argument(s) (true) (`burstmap run -h` lists"),
        (["run", "--size", "abc"], "Invalid value for '--size': "),
        (["run", "--bogus"], "No such option: --bogus (`burstmap run -h` lists the options)"),
        (["status"], "Missing argument 'EXECUTION_ARN'."),
        (["frobnicate"], "No such command 'frobnicate'."),
    ],
)
def test_a_usage_error_is_one_line_exit_2(runner, args, line):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(f"burstmap: {line}")
