"""Fixtures of the runtime tests (what ships to Lambda)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A moto S3 client with the test module's ``BUCKET`` created."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=request.module.BUCKET)
        yield client
