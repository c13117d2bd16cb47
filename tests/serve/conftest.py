"""Fixtures of the API tests: the small app of served_app.py, served once per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from served_app import client, served

from burstmap.serve.endpoint import LocalEndpoint


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with served() as running:
        yield running


@pytest.fixture(scope="module")
def sfn(endpoint: LocalEndpoint) -> Any:
    return client("stepfunctions", endpoint.url)
