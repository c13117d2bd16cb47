"""Fixtures of the distributed Map tests."""

from __future__ import annotations

import boto3
import pytest
from map_support import BUCKET
from moto import mock_aws


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
