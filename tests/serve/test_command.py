"""``burstmap serve`` as a process: it announces its endpoint, stops on SIGTERM/SIGINT and, with
``--state-dir``, keeps executions and S3 data across a restart."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from served_app import client
from typer.testing import CliRunner

from burstmap.serve.command import serve as serve_command

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"serving Step Functions, S3 and CloudFormation on (http://\S+)")


@contextmanager
def serve(*args: str, stop: int = signal.SIGTERM) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run ``burstmap serve ARGS`` (the command module, as cli.py will run it) and yield its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "burstmap.serve.command", "--app-dir", str(PROJECT_DIR), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    lines = []
    try:
        deadline = time.monotonic() + 180
        while (match := URL_LINE.search(lines[-1] if lines else "")) is None:
            line = process.stderr.readline()
            assert line or process.poll() is None, f"burstmap serve exited: {''.join(lines)}"
            lines.append(line)
            assert time.monotonic() < deadline, "burstmap serve did not announce its endpoint"
        yield match.group(1), process
    finally:
        if process.poll() is None:
            process.send_signal(stop)
        process.wait(timeout=60)


def wait_until_ended(sfn: Any, arn: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_serve_announces_a_loopback_endpoint_and_stops_on_sigint() -> None:
    with serve(stop=signal.SIGINT) as (url, process):
        assert url.startswith("http://127.0.0.1:")
        machines = client("stepfunctions", url).list_state_machines()["stateMachines"]
        assert [m["name"] for m in machines] == ["BurstmapExample-JobStateMachineE2E0FF72"]
    assert process.returncode == 0
    assert "stopping" in process.stderr.read()


def test_the_state_dir_keeps_executions_and_s3_data_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve("--state-dir", str(state)) as (url, process):
        sfn, s3 = client("stepfunctions", url), client("s3", url)
        (machine,) = sfn.list_state_machines()["stateMachines"]
        finished = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"size": 30}')
        ended = wait_until_ended(sfn, finished["executionArn"])
        assert ended["status"] == "SUCCEEDED"
        map_runs = sfn.list_map_runs(executionArn=finished["executionArn"])["mapRuns"]
        history = sfn.get_execution_history(executionArn=finished["executionArn"])["events"]
        s3.put_object(Bucket="burstmapexample-jobbucket9833d82b", Key="notes/kept.txt", Body=b"still here")
        running = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"size": 100000}')
    assert process.returncode == 0

    with serve("--state-dir", str(state)) as (url, _):
        sfn, s3 = client("stepfunctions", url), client("s3", url)
        again = sfn.describe_execution(executionArn=finished["executionArn"])
        assert (again["status"], again["output"], again["startDate"]) == (
            "SUCCEEDED",
            ended["output"],
            ended["startDate"],
        )
        assert sfn.list_map_runs(executionArn=finished["executionArn"])["mapRuns"] == map_runs
        assert sfn.get_execution_history(executionArn=finished["executionArn"])["events"] == history
        types = [event["type"] for event in history]
        assert (types[0], types[-1]) == ("ExecutionStarted", "ExecutionSucceeded")
        assert "MapRunStarted" in types
        # An execution the server stopped when it went down is ABORTED, and says why.
        stopped = sfn.describe_execution(executionArn=running["executionArn"])
        assert (stopped["status"], stopped["error"]) == ("ABORTED", "burstmap.ServerStopped")
        # The S3 data is back: what a client put, and what the job wrote.
        body = s3.get_object(Bucket="burstmapexample-jobbucket9833d82b", Key="notes/kept.txt")["Body"].read()
        assert body == b"still here"
        bucket, key = json.loads(ended["output"])["manifest"][len("s3://") :].split("/", 1)
        assert (
            json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["MapRunArn"]
            == map_runs[0]["mapRunArn"]
        )


def test_without_a_state_dir_nothing_is_kept(tmp_path: Path) -> None:
    with serve() as (url, _):
        sfn = client("stepfunctions", url)
        (machine,) = sfn.list_state_machines()["stateMachines"]
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"size": 3}')[
            "executionArn"
        ]
        wait_until_ended(sfn, arn)
    with serve() as (url, _):
        sfn = client("stepfunctions", url)
        with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
            sfn.describe_execution(executionArn=arn)


def test_a_bad_app_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "burstmap.serve.command", "--app-dir", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"burstmap: no CDK app in {tmp_path}")


def test_the_command_registers_on_a_typer_app_as_cli_py_will() -> None:
    """cli.py adds it with `app.command(name="serve")(serve)`; its options and help come along."""
    app = typer.Typer()
    app.command(name="serve")(serve_command)
    app.command(name="other")(lambda: None)
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--app-dir", "--port", "--host", "--state-dir"):
        assert option in result.stdout
    refused = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert refused.exit_code == 2 and "--port must be 0 to 65535, got 70000" in refused.output
