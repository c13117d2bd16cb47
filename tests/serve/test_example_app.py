"""The example app served, driven by clients written elsewhere: the AWS CLI (a subprocess) and burstmap's
own AWS commands (``run --stack``, ``status``, ``results``, ``cancel``) through ``AWS_ENDPOINT_URL``,
exactly as they drive a deployed stack. Results must equal ``burstmap run``'s. (``redrive``:
test_redrive_job.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.client.local_app import prepare_app
from burstmap.client.local_job import run_local
from burstmap.serve.endpoint import LocalEndpoint

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK = "BurstmapExample"
AWS_CLI = str(Path(sys.executable).with_name("aws"))

sys.set_int_max_str_digits(0)  # totals have hundreds of digits


@pytest.fixture(scope="module")
def served() -> Iterator[LocalEndpoint]:
    with LocalEndpoint.from_app_dir(PROJECT_DIR, port=0) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def machine_arn(served: LocalEndpoint) -> str:
    (machine,) = served.machines
    return machine.arn


def aws(endpoint: LocalEndpoint, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The AWS CLI as a user runs it: ``--endpoint-url``, any credentials (the tests' fake ones)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    command = [AWS_CLI, *args, "--endpoint-url", endpoint.url, "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def aws_json(endpoint: LocalEndpoint, *args: str) -> Any:
    return json.loads(aws(endpoint, *args).stdout or "null")


def without_manifest(output: dict[str, Any]) -> dict[str, Any]:
    """A job's output minus where its manifest is (each run's map run id names the folder)."""
    return {key: value for key, value in output.items() if key != "manifest"}


def result_records(directory: Path) -> list[str]:
    """Every record of the SUCCEEDED result files under ``directory``, in a canonical order."""
    records = []
    for path in sorted(directory.rglob("SUCCEEDED_*.json")):
        records += [json.dumps(record, sort_keys=True) for record in json.loads(path.read_text())]
    return sorted(records)


@pytest.fixture(scope="module")
def reference_1024(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """``burstmap run --size 1024 --output-dir DIR``: its output and DIR."""
    prepare_app(PROJECT_DIR)
    directory = tmp_path_factory.mktemp("local-1024")
    result = run_local(size=1024, app_dir=PROJECT_DIR, output_dir=directory)
    assert result.succeeded, result
    return result.output, directory


# ------------------------------------------------------------------------------------- the AWS CLI


def test_the_aws_cli_runs_the_example_job_as_burstmap_run_does(
    served: LocalEndpoint, machine_arn: str, reference_1024: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    expected, local_dir = reference_1024
    started = aws_json(
        served,
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        machine_arn,
        "--input",
        '{"size": 1024}',
    )
    arn = started["executionArn"]
    deadline = time.monotonic() + 300
    while (described := aws_json(served, "stepfunctions", "describe-execution", "--execution-arn", arn))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, "the 1,024-item job did not end within 300 s"
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert without_manifest(output) == without_manifest(expected)
    assert output["total_sum"] == expected["total_sum"] and output["succeeded"] == 1024

    runs = aws_json(served, "stepfunctions", "list-map-runs", "--execution-arn", arn)["mapRuns"]
    assert len(runs) == 1
    run = aws_json(served, "stepfunctions", "describe-map-run", "--map-run-arn", runs[0]["mapRunArn"])
    assert run["status"] == "SUCCEEDED"
    assert (run["itemCounts"]["total"], run["itemCounts"]["succeeded"]) == (1024, 1024)

    # The result files, copied with `aws s3 cp` as a user would, hold what the local run wrote.
    manifest_uri = output["manifest"]
    aws(served, "s3", "cp", manifest_uri, str(tmp_path / "manifest.json"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["MapRunArn"] == runs[0]["mapRunArn"]
    for entry in manifest["ResultFiles"]["SUCCEEDED"]:
        target = tmp_path / Path(entry["Key"]).name
        aws(served, "s3", "cp", f"s3://{manifest['DestinationBucket']}/{entry['Key']}", str(target))
    assert result_records(tmp_path) == result_records(local_dir)


def test_the_aws_cli_lists_machines_and_gets_awss_errors(served: LocalEndpoint, machine_arn: str) -> None:
    listed = aws_json(served, "stepfunctions", "list-state-machines")["stateMachines"]
    assert [(m["stateMachineArn"], m["type"]) for m in listed] == [(machine_arn, "STANDARD")]
    missing = machine_arn.replace(":stateMachine:", ":execution:") + ":no-such-execution"
    result = aws(served, "stepfunctions", "describe-execution", "--execution-arn", missing, check=False)
    assert result.returncode in (254, 255)  # a service error: 255 from the AWS CLI v1, 254 from v2
    assert (
        "An error occurred (ExecutionDoesNotExist) when calling the DescribeExecution operation: "
        f"Execution Does Not Exist: '{missing}'"
    ) in result.stderr
    stacks = aws_json(served, "cloudformation", "describe-stacks", "--stack-name", STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}
    assert outputs["StateMachineArn"] == machine_arn


# ------------------------------------------------------------------------------------- burstmap's commands


def burstmap(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli_app, list(args), catch_exceptions=False)
    stdout = result.stdout.strip()
    try:
        parsed = json.loads(stdout) if stdout else None
    except ValueError:
        parsed = stdout
    return result.exit_code, parsed, result.stderr


@pytest.fixture
def pointed_at(served: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> LocalEndpoint:
    """burstmap's AWS commands find the endpoint as any client does: AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.url)
    return served


def test_burstmap_run_stack_status_and_results_against_the_served_stack(
    pointed_at: LocalEndpoint, tmp_path: Path
) -> None:
    local_dir = tmp_path / "local"
    reference = run_local(size=200, app_dir=PROJECT_DIR, output_dir=local_dir)
    code, output, stderr = burstmap(
        "run", "--stack", STACK, "--size", "200", "--poll-seconds", "0.2", "--no-progress"
    )
    assert code == 0, stderr
    assert without_manifest(output) == without_manifest(reference.output)

    code, arn, stderr = burstmap("run", "--stack", STACK, "--size", "200", "--no-wait")
    assert code == 0 and arn.startswith("arn:aws:states:us-east-1:111111111111:execution:"), stderr
    pointed_at.store.get(arn).wait(timeout=300)
    code, status, stderr = burstmap("status", arn)
    assert code == 0, stderr
    assert status["status"] == "SUCCEEDED" and status["executionArn"] == arn
    (run,) = status["mapRuns"]
    assert run["status"] == "SUCCEEDED" and run["itemCounts"]["succeeded"] == 200

    code, downloaded, stderr = burstmap("results", arn, "--output-dir", str(tmp_path / "served"))
    assert code == 0, stderr
    assert downloaded["failed_count"] == 0
    assert result_records(tmp_path / "served") == result_records(local_dir)


def test_burstmap_cancel_stops_a_long_job_and_aborts_its_running_children(pointed_at: LocalEndpoint) -> None:
    code, arn, stderr = burstmap("run", "--stack", STACK, "--size", "4096", "--no-wait")
    assert code == 0, stderr
    invoked = pointed_at.runtime.counters.invocations
    deadline = time.monotonic() + 120
    while pointed_at.runtime.counters.invocations < invoked + 20:  # the start Lambda and some children
        assert time.monotonic() < deadline, "the job never reached its Distributed Map"
        time.sleep(0.05)
    code, cancelled, stderr = burstmap("cancel", arn)
    assert code == 0, stderr
    assert cancelled["status"] == "ABORTED"
    record = pointed_at.store.get(arn)
    started = time.monotonic()
    assert record.wait(timeout=120), "the cancelled job kept running"
    wound_down = time.monotonic() - started
    code, status, stderr = burstmap("status", arn)
    assert (status["status"], status["error"]) == ("ABORTED", "burstmap.Cancelled")
    (run,) = status["mapRuns"]  # the map run had started: it ends ABORTED, its running children too
    assert run["status"] == "ABORTED"
    counts = run["itemCounts"]
    assert counts["aborted"] > 0 and counts["running"] == 0 and counts["failed"] == 0
    assert counts["succeeded"] + counts["aborted"] < 4096
    assert run["executionCounts"]["aborted"] > 0
    assert wound_down < 10  # pending invocations abandoned, the workers running them stopped
    history = aws_json(pointed_at, "stepfunctions", "get-execution-history", "--execution-arn", arn)["events"]
    assert [event["type"] for event in history][-2:] == ["MapRunAborted", "ExecutionAborted"]
