"""Fixtures of the client tests: AWS accounts in moto, a served engine for what moto cannot answer
(map runs, executions that run, redrives), clients to swap in, and a process without credentials."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_fakes import BUCKET, DEFINITION, MACHINE, REGION, ROLE_ARN, stack_template
from moto import mock_aws
from served_job import CONTROLS, served_clients, served_endpoint

from burstmap.client import aws
from burstmap.serve.endpoint import LocalEndpoint


@pytest.fixture
def moto_account() -> Iterator[tuple[aws.Clients, str]]:
    """moto clients with a burstmap-shaped state machine and a results bucket: (clients, machine ARN)."""
    with mock_aws():
        clients = aws.aws_clients(region=REGION)
        clients.s3.create_bucket(Bucket=BUCKET)
        arn = clients.sfn.create_state_machine(
            name=MACHINE, definition=json.dumps(DEFINITION), roleArn=ROLE_ARN
        )["stateMachineArn"]
        yield clients, arn


@pytest.fixture
def stack() -> Iterator[aws.BurstmapStack]:
    """moto: a CloudFormation stack with burstmap's outputs, its state machine and its bucket (BUCKET)."""
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=MACHINE, TemplateBody=json.dumps(stack_template(BUCKET)))
        yield aws.BurstmapStack.from_stack(MACHINE, cloudformation=cloudformation)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalEndpoint, aws.Clients]]:
    """``burstmap serve`` in process over served_job.py's machine, and clients pointed at it."""
    CONTROLS.reset()
    with served_endpoint() as endpoint:
        yield endpoint, served_clients(endpoint.url)


@pytest.fixture
def served_clients_of(served: tuple[LocalEndpoint, aws.Clients]) -> Iterator[aws.Clients]:
    """The served endpoint's clients, its compute reset (not repaired, nothing held) after each test."""
    CONTROLS.reset()
    CONTROLS.gate.clear()
    yield served[1]
    CONTROLS.reset()


@pytest.fixture
def use_clients(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make every AWS client the code creates these: ``use_clients(sfn, s3=...)`` (moto, served, stubbed)."""

    def install(sfn: Any, s3: Any = None, cloudformation: Any = None) -> None:
        clients = aws.Clients(sfn=sfn, s3=s3, cloudformation=cloudformation)
        monkeypatch.setattr(aws, "aws_clients", lambda region=None, profile=None: clients)

    return install


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A process that finds no AWS credentials anywhere (no variables, files or instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
