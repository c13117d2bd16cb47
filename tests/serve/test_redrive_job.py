"""Redriving a served job end to end: tests/fixtures/flagged_app's compute fails on the items a flag object
in S3 lists; once the flag is removed, ``burstmap redrive`` (and the AWS CLI's ``redrive-execution``)
rerun only the children that did not succeed, and the job's total comes out exact. Each compute call
leaves a marker object, so the test counts how often every item was computed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.serve.endpoint import LocalEndpoint

pytestmark = pytest.mark.slow

FLAGGED_APP = Path(__file__).resolve().parents[1] / "fixtures" / "flagged_app"
STACK = "BurstmapFlagged"
FLAG = "flags/broken.json"
SIZE = 10
AWS_CLI = str(Path(sys.executable).with_name("aws"))


@pytest.fixture(scope="module")
def served() -> Iterator[LocalEndpoint]:
    with LocalEndpoint.from_app_dir(FLAGGED_APP, port=0) as endpoint:
        yield endpoint


@pytest.fixture
def pointed_at(served: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> LocalEndpoint:
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.url)
    return served


@pytest.fixture(scope="module")
def bucket(served: LocalEndpoint) -> str:
    (stack,) = served.stacks
    return next(output.value for output in stack.outputs if output.key == "BucketName")


def burstmap(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli_app, list(args), catch_exceptions=False)
    stdout = result.stdout.strip()
    try:
        parsed = json.loads(stdout) if stdout else None
    except ValueError:
        parsed = stdout
    return result.exit_code, parsed, result.stderr


def calls(served: LocalEndpoint, bucket: str, run: str) -> Counter[int]:
    """How often each item was computed in the job whose markers are under ``calls/`` (one job at a time)."""
    s3 = served.s3.client()
    counted: Counter[int] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"calls/{run}/"):
        for entry in page.get("Contents", []):
            counted[int(entry["Key"].split("/")[2])] += 1  # calls/<run>/<item>/<uuid>
    return counted


def failed_job(served: LocalEndpoint, bucket: str, run: str, flagged: list[int]) -> str:
    """Start a job with ``flagged`` items failing; wait for it to fail; its execution ARN."""
    s3 = served.s3.client()
    s3.put_object(Bucket=bucket, Key=FLAG, Body=json.dumps(flagged).encode())
    parameters = json.dumps({"bucket": bucket, "flag": FLAG, "run": run})
    code, arn, stderr = burstmap(
        "run", "--stack", STACK, "--size", str(SIZE), "--parameters", parameters, "--no-wait"
    )
    assert code == 0, stderr
    assert served.store.get(arn).wait(timeout=120), "the job did not end"
    return arn


def test_burstmap_redrive_reruns_only_the_flagged_items_and_the_total_is_exact(
    pointed_at: LocalEndpoint, bucket: str
) -> None:
    arn = failed_job(pointed_at, bucket, "cli", [3, 7])
    code, status, stderr = burstmap("status", arn)
    assert (status["status"], status["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), stderr
    first = calls(pointed_at, bucket, "cli")
    assert first[3] == 1 and first[7] <= 1  # 7 may never have started: the map run stopped at 3

    pointed_at.s3.client().delete_object(Bucket=bucket, Key=FLAG)
    code, output, stderr = burstmap("redrive", arn, "--wait", "--poll-seconds", "0.2", "--no-progress")
    assert code == 0, stderr
    assert output["total_sum"] == str(sum(range(SIZE)))  # every item once, exactly
    assert (output["succeeded"], output["failed"]) == (SIZE, 0)
    again = calls(pointed_at, bucket, "cli") - first
    assert set(again) == {3, 7} | (set(range(SIZE)) - set(first))  # the failed item and those never run
    assert all(count == 1 for count in again.values())
    code, status, stderr = burstmap("status", arn)
    assert (status["status"], status["redriveCount"]) == ("SUCCEEDED", 1)
    (run,) = status["mapRuns"]
    assert run["status"] == "SUCCEEDED" and run["itemCounts"]["succeeded"] == SIZE


def test_the_aws_cli_redrives_a_failed_execution(
    served: LocalEndpoint, bucket: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.url)
    arn = failed_job(served, bucket, "aws", [0])
    served.s3.client().delete_object(Bucket=bucket, Key=FLAG)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    command = [
        AWS_CLI,
        "stepfunctions",
        "redrive-execution",
        "--execution-arn",
        arn,
        "--endpoint-url",
        served.url,
    ]
    result = subprocess.run(
        [*command, "--output", "json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "redriveDate" in json.loads(result.stdout)
    deadline = time.monotonic() + 120
    while (status := burstmap("status", arn)[1])["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["status"] == "SUCCEEDED"
    assert calls(served, bucket, "aws")[0] == 2  # failed once, then succeeded on the redrive
    refused = subprocess.run(
        [*command, "--output", "json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert refused.returncode != 0
    assert "ExecutionNotRedrivable" in refused.stderr and "Execution is SUCCEEDED" in refused.stderr
