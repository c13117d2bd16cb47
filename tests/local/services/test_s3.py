"""The embedded S3 endpoint: moto's server in a child process, reachable from Lambda workers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime
from burstmap.local.services.s3 import LocalS3, LocalS3Error

WRITER = """
import boto3

s3 = boto3.client("s3")  # no endpoint or credentials here: they come from the environment


def handler(event, context):
    s3.put_object(Bucket=event["bucket"], Key=event["key"], Body=event["body"].encode())
    return s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read().decode()
"""


@pytest.fixture(scope="module")
def local_s3() -> LocalS3:
    with LocalS3(buckets=["results-bucket"]) as server:
        yield server


def test_a_worker_reads_and_writes_the_local_s3_through_its_environment(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    (tmp_path / "writer.py").write_text(textwrap.dedent(WRITER))
    event = {"bucket": "results-bucket", "key": "out/one.txt", "body": "from the worker"}

    with LambdaRuntime(
        [FunctionSpec("writer", "writer.handler", [tmp_path], timeout_seconds=30)], extra_env=local_s3.env()
    ) as runtime:
        invocation = runtime.invoke("writer", json.dumps(event).encode())

    assert invocation.function_error is None, invocation.payload
    assert json.loads(invocation.payload) == "from the worker"
    body = local_s3.client().get_object(Bucket="results-bucket", Key="out/one.txt")["Body"].read()
    assert body == b"from the worker"


def test_the_environment_points_every_client_at_the_local_server(local_s3: LocalS3) -> None:
    env = local_s3.env()

    assert env["AWS_ENDPOINT_URL_S3"] == env["AWS_ENDPOINT_URL"] == local_s3.endpoint_url
    assert local_s3.endpoint_url.startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_buckets_are_created_on_demand_once(local_s3: LocalS3) -> None:
    local_s3.ensure_bucket("made-later")
    local_s3.ensure_bucket("made-later")

    names = {b["Name"] for b in local_s3.client().list_buckets()["Buckets"]}
    assert {"results-bucket", "made-later"} <= names


def test_an_external_endpoint_is_wrapped_without_starting_anything(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the user's own credentials pass through
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with LocalS3(endpoint_url=local_s3.endpoint_url + "/") as external:
        assert external.endpoint_url == local_s3.endpoint_url
        assert external.env() == {
            "AWS_ENDPOINT_URL_S3": local_s3.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        external.ensure_bucket("external-bucket")
    assert local_s3.running  # stopping the wrapper left the server alone
    assert "external-bucket" in {b["Name"] for b in local_s3.client().list_buckets()["Buckets"]}


def test_stopping_ends_the_server_process() -> None:
    server = LocalS3().start()
    process = server._process
    assert process is not None and server.running

    server.stop()

    assert process.poll() is not None
    assert not server.running
    with pytest.raises(LocalS3Error, match="not running"):
        _ = server.endpoint_url
