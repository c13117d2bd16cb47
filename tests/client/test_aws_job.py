"""Jobs on AWS (burstmap.client.aws_job, public as burstmap.remote) against moto (Step Functions, S3,
CloudFormation) and, for what moto lacks (map runs, executions that run, failures, redrives), against a
served engine (served_job.py). Stubber and raw HTTP answers only for what no server here produces:
access denied and throttling."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest
import served_job
from aws_fakes import (
    BUCKET,
    EXECUTION_ARN,
    MACHINE_ARN,
    MAP_RUN_ARN,
    REGION,
    child_record,
    execution,
    finish_moto_execution,
    lambda_cause,
    put_results,
    stack_template,
    stubbed_sfn,
)
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from served_job import CONTROLS, job_input

from burstmap import remote
from burstmap.client.aws import Clients, aws_clients
from burstmap.client.aws_job import AwsBackend, AwsJob
from burstmap.client.job_input import InvalidArgument, InvalidArgumentType, JobInput
from burstmap.local.core.progress import Progress


def test_the_public_path_is_burstmap_remote():
    """README: ``from burstmap.remote import BurstmapStack, Job``, Job.start, wait, result, JobFailed."""
    assert remote.Job is AwsJob
    assert all(callable(getattr(AwsJob, name)) for name in ("start", "wait", "result", "download_results"))
    assert issubclass(remote.JobFailed, Exception) and remote.BurstmapStack.from_stack


# ------------------------------------------------------------------------------------------- input
def test_large_items_go_through_the_stack_bucket(moto_account):
    clients, arn = moto_account
    items = [{"text": "x" * 100, "n": n} for n in range(3000)]  # about 330 KB of JSON
    job = AwsBackend(arn, bucket=BUCKET, clients=clients).start(JobInput.of(items=items, parameters={"p": 1}))
    staged = json.loads(job.describe()["input"])
    assert set(staged) == {"items_s3", "parameters"}
    bucket, key = staged["items_s3"][5:].split("/", 1)
    assert bucket == BUCKET and key.startswith("items/") and key.endswith(".jsonl")
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == items
    with pytest.raises(remote.AwsError, match="too large for an execution input: pass --stack"):
        AwsBackend(arn, clients=clients).start(JobInput.of(items=items))
    small = AwsBackend(arn, clients=clients).start(JobInput.of(items=[1, 2]))
    assert json.loads(small.describe()["input"]) == {"items": [1, 2]}


# ------------------------------------------------------------------------------------------- moto
def test_start_sends_the_contract_input_and_status_reads_it_back(moto_account):
    clients, arn = moto_account
    job = AwsJob.start(arn, {"size": 4, "parameters": {"p": 1}}, name="job-7", clients=clients)
    assert job.execution_arn.endswith(":execution:burstmap-demo:job-7")
    described = job.describe()
    assert json.loads(described["input"]) == {"size": 4, "parameters": {"p": 1}}
    assert job.status == "RUNNING"
    with pytest.raises(remote.JobNotFinished, match="still RUNNING: wait for it first"):
        job.result()


def test_cancel_stops_the_execution(moto_account):
    clients, arn = moto_account
    job = AwsJob.start(arn, {"size": 4}, clients=clients)
    stopped = job.cancel()
    assert stopped is not None
    assert job.status == "ABORTED"


def test_result_of_a_succeeded_execution_is_its_output(moto_account):
    clients, arn = moto_account
    job = AwsJob.start(arn, {"size": 4}, clients=clients)
    finish_moto_execution(job.execution_arn, "SUCCEEDED", output={"total_sum": "10", "succeeded": 4})
    assert job.result() == {"total_sum": "10", "succeeded": 4}


def test_download_results_copies_manifest_files_and_failed_items(moto_account, tmp_path: Path):
    clients, arn = moto_account
    manifest = put_results(
        clients.s3,
        succeeded=[child_record(0, "a", output=1), child_record(1, "bb", output=2)],
        failed=[child_record(2, "ccc", error="ValueError", cause=lambda_cause("bad item ccc"))],
    )
    job = AwsJob.start(arn, {"size": 3}, clients=clients)
    finish_moto_execution(job.execution_arn, "SUCCEEDED", output={"total_sum": "3", "manifest": manifest})

    downloaded = job.download_results(tmp_path / "out")

    assert json.loads(downloaded.manifest.read_text())["MapRunArn"] == MAP_RUN_ARN
    assert sorted(p.name for p in downloaded.result_files) == ["FAILED_0.json", "SUCCEEDED_0.json"]
    succeeded = json.loads((tmp_path / "out" / "SUCCEEDED_0.json").read_text())
    assert [json.loads(r["Output"]) for r in succeeded] == [1, 2]
    assert downloaded.failed_count == 1
    assert json.loads(downloaded.failed_items.read_text()) == [
        {"index": 2, "item": "ccc", "error": "ValueError", "cause": lambda_cause("bad item ccc")}
    ]


def test_download_results_before_the_map_writes_says_to_wait(served_clients_of, tmp_path: Path):
    job = AwsJob.start(served_job.MACHINE_ARN, job_input([1], wait_seconds=60), clients=served_clients_of)
    try:
        with pytest.raises(remote.NoResults, match="no ResultWriter manifest yet"):
            job.download_results(tmp_path)
    finally:
        job.cancel()


def test_stack_outputs_resolve_the_state_machine_and_bucket():
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName="demo", TemplateBody=json.dumps(stack_template()))
        stack = remote.BurstmapStack.from_stack("demo", cloudformation=cloudformation)
        assert stack.state_machine_arn.startswith(f"arn:aws:states:{REGION}:")
        assert stack.bucket_name and stack.bucket_name.startswith("demo-")


def test_stack_not_found_is_one_clear_sentence():
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        with pytest.raises(remote.StackNotFound) as raised:
            remote.BurstmapStack.from_stack("missing", cloudformation=cloudformation)
    assert str(raised.value) == (
        "stack 'missing' not found in us-east-1: deploy it with `cdk deploy`, or pass --region / "
        "--state-machine-arn"
    )


def test_stack_without_burstmap_outputs_is_refused():
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        template = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
        cloudformation.create_stack(StackName="other", TemplateBody=json.dumps(template))
        with pytest.raises(remote.StackNotFound, match="has no output StateMachineArn"):
            remote.BurstmapStack.from_stack("other", cloudformation=cloudformation)


# ------------------------------------------------------------------------------------------- served
def eventually(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)
    return value


def test_progress_sums_describe_map_run_item_counts_while_the_job_runs(served_clients_of):
    served_input = job_input(list(range(6)), hold=[4, 5])
    job = AwsJob.start(served_job.MACHINE_ARN, served_input, clients=served_clients_of)
    progress = eventually(lambda: (p := job.progress()).succeeded == 4 and p.running == 2 and p)
    assert (progress.total, progress.failed, progress.pending, progress.done) == (6, 0, 0, 4)
    CONTROLS.gate.set()
    assert job.wait(poll_seconds=0.05)["status"] == "SUCCEEDED"
    assert job.progress().succeeded == 6


def test_progress_before_the_map_starts_has_no_total(served_clients_of):
    job = AwsJob.start(served_job.MACHINE_ARN, job_input([1], wait_seconds=60), clients=served_clients_of)
    try:
        assert job.status == "RUNNING" and job.map_run_arns() == []
        assert job.progress().total is None
    finally:
        job.cancel()


def test_wait_polls_until_the_execution_ends_and_reports_progress(served_clients_of):
    calls: list[str] = []
    served_clients_of.sfn.meta.events.register(
        "before-call.sfn.*", lambda model, **kwargs: calls.append(model.name)
    )
    job = AwsJob.start(served_job.MACHINE_ARN, job_input(list(range(8)), hold=[7]), clients=served_clients_of)
    seen: list[Progress] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(seen) >= 2:
            CONTROLS.gate.set()  # once a held item has been seen running, let it finish
        time.sleep(0.05)

    final = job.wait(on_progress=seen.append, poll_seconds=0.5, sleep=sleep)
    assert final["status"] == "SUCCEEDED"
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == 8
    assert any(p.running >= 1 for p in seen) and set(sleeps) == {0.5}
    calls.clear()
    map_run_arn = served_job.MACHINE_ARN.replace(":stateMachine:", ":mapRun:") + "/Compute:"
    assert job.result()["MapRunArn"].startswith(map_run_arn)
    assert calls == []  # the final description is reused: no more calls


def test_a_failed_execution_raises_job_failed_with_the_first_failing_item(served_clients_of):
    job = AwsJob.start(served_job.MACHINE_ARN, job_input(list(range(6)), fail=[3]), clients=served_clients_of)
    assert job.wait(poll_seconds=0.05)["status"] == "FAILED"
    with pytest.raises(remote.JobFailed) as raised:
        job.result()
    failed = raised.value
    assert (failed.error, failed.cause) == (
        "States.ExceedToleratedFailureThreshold",
        "The specified tolerated failure threshold was exceeded",
    )
    first = failed.first_failure
    assert (first.status, first.index, first.item, first.error) == ("FAILED", 3, 3, "ValueError")
    assert json.loads(first.cause)["errorMessage"] == "item 3 is odd"
    assert failed.failed_items == 1


def test_redrive_reruns_the_failed_items_and_the_job_succeeds(served_clients_of, tmp_path: Path):
    job = AwsJob.start(served_job.MACHINE_ARN, job_input(list(range(6)), fail=[2]), clients=served_clients_of)
    assert job.wait(poll_seconds=0.05)["status"] == "FAILED"
    CONTROLS.repaired = True
    redriven = job.redrive()
    assert redriven.tzinfo is not None
    final = job.wait(poll_seconds=0.05)
    assert (final["status"], final["redriveCount"]) == ("SUCCEEDED", 1)
    downloaded = job.download_results(tmp_path / "out")
    outputs = [
        json.loads(record["Output"])
        for path in downloaded.result_files
        if path.name.startswith("SUCCEEDED")
        for record in json.loads(path.read_text())
    ]
    assert sorted(outputs) == [i * 10 for i in range(6)] and downloaded.failed_count == 0
    (run,) = job.map_runs()
    assert (run["redriveCount"], run["itemCounts"]["succeeded"]) == (1, 6)


def test_redrive_of_a_succeeded_execution_says_why_not(served_clients_of):
    job = AwsJob.start(served_job.MACHINE_ARN, job_input([1]), clients=served_clients_of)
    assert job.wait(poll_seconds=0.05)["status"] == "SUCCEEDED"
    with pytest.raises(
        remote.AwsError, match="cannot be redriven: Execution is SUCCEEDED and cannot be redriven"
    ):
        job.redrive()


def test_batched_failures_name_every_item_of_the_batch(moto_account):
    clients, arn = moto_account
    record = child_record(0, None, error="KeyError", cause="c")
    record["Input"] = json.dumps(
        {"Items": [{"item": "a", "index": 8}, {"item": "b", "index": 9}], "BatchInput": {"parameters": {}}}
    )
    manifest = put_results(clients.s3, succeeded=[], failed=[record])
    job = AwsJob.start(arn, {"size": 2}, clients=clients)
    finish_moto_execution(job.execution_arn, "SUCCEEDED", output={"manifest": manifest})
    assert [(f.index, f.item, f.error, f.cause) for f in job.failed_items()] == [
        (8, "a", "KeyError", "c"),
        (9, "b", "KeyError", "c"),
    ]


# ------------------------------------------------------------------------------------------- errors
def test_access_denied_is_one_line_naming_the_call():
    sfn, stubber = stubbed_sfn()
    stubber.add_client_error(
        "start_execution",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: states:StartExecution",
        400,
    )
    with pytest.raises(remote.AccessDenied) as raised:
        AwsJob.start(MACHINE_ARN, {"size": 1}, clients=Clients(sfn=sfn, s3=None, cloudformation=None))
    message = str(raised.value)
    assert message.startswith(f"access denied: StartExecution on state machine {MACHINE_ARN} (User: ")
    assert message.endswith("ask for that permission or use a role that has it")
    assert "\n" not in message


def test_missing_execution_is_not_found(moto_account):
    clients, _ = moto_account
    job = AwsJob(EXECUTION_ARN.replace("job-1", "nope"), clients=clients)
    with pytest.raises(remote.NotFound, match="not found .*check the ARN and the region"):
        job.describe()


@pytest.mark.usefixtures("no_credentials")
def test_no_credentials_is_one_clear_line():
    job = AwsJob(EXECUTION_ARN, clients=aws_clients(region=REGION))
    with pytest.raises(remote.NoCredentials, match="^no AWS credentials found: run `aws configure`"):
        job.describe()


@pytest.mark.usefixtures("no_credentials")
def test_unknown_profile_is_one_clear_line():
    with pytest.raises(remote.NoCredentials, match="AWS profile 'nobody' not found"):
        aws_clients(region=REGION, profile="nobody")


def test_throttling_is_retried_in_standard_mode_then_reported(monkeypatch):
    """A real client (no stubs) whose HTTP layer answers ThrottlingException: botocore retries it."""
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)  # keep the backoff instant
    sfn = aws_clients(region=REGION).sfn
    assert sfn.meta.config.retries["mode"] == "standard"
    attempts: list[int] = []
    ok = json.dumps(execution("RUNNING") | {"startDate": 1795428000.0}).encode()

    def answer(request, **kwargs):
        attempts.append(1)
        if len(attempts) <= 2:
            return _http(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
        return _http(200, json.loads(ok))

    sfn.meta.events.register("before-send.sfn.DescribeExecution", answer)
    job = AwsJob(EXECUTION_ARN, clients=Clients(sfn=sfn, s3=None, cloudformation=None))
    assert job.describe()["status"] == "RUNNING"
    assert len(attempts) == 3  # two throttled attempts retried, the third answered

    attempts.clear()
    sfn.meta.events.unregister("before-send.sfn.DescribeExecution", answer)
    sfn.meta.events.register(
        "before-send.sfn.DescribeExecution",
        lambda request, **kwargs: attempts.append(1) or _http(400, {"__type": "ThrottlingException"}),
    )
    with pytest.raises(remote.AwsThrottled, match="kept throttling DescribeExecution .* after 8 attempts"):
        job.describe()
    assert len(attempts) == 8


# ------------------------------------------------------------------------------------------- helpers
def _http(status: int, body: dict) -> AWSResponse:
    class Raw:
        def stream(self, **kwargs):
            yield json.dumps(body).encode()

    return AWSResponse("https://states.us-east-1.amazonaws.com/", status, {}, Raw())


@pytest.mark.parametrize(
    ("execution_input", "kwargs", "error", "message"),
    [
        ("abc", {}, InvalidArgumentType, "execution_input='abc': must be the execution input, a JSON object"),
        ([1], {}, InvalidArgumentType, "execution_input=[1]: must be the execution input"),
        (
            {"items": [{1, 2}]},
            {},
            InvalidArgumentType,
            'execution_input["items"][0] is a set, not a JSON value',
        ),
        (
            {"size": float("nan")},
            {},
            InvalidArgumentType,
            'execution_input["size"] is nan, not a JSON number',
        ),
        ({"items": ["\udcff"]}, {}, InvalidArgumentType, "holds the lone surrogate '\\udcff'"),
        ({"items": ["x" * 300_000]}, {}, InvalidArgument, "takes 300015 bytes of JSON, more than the 262144"),
        ({"size": 3}, {"name": 3}, InvalidArgumentType, "name=3: must be the execution's name (a str)"),
        ({"size": 3}, {"poll_seconds": float("inf")}, InvalidArgument, "poll_seconds=inf: must be a finite"),
    ],
)
def test_job_start_names_a_bad_argument_before_calling_aws(execution_input, kwargs, error, message) -> None:
    class NoAws:
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("AWS was called")

    clients = Clients(sfn=NoAws(), s3=None, cloudformation=None)
    with pytest.raises(error) as raised:
        AwsJob.start(MACHINE_ARN, execution_input, clients=clients, **kwargs)
    assert message in str(raised.value) and isinstance(raised.value, ValueError)
