"""Fixtures of the CDK tests: a fresh stack and a user's compute function in it."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_support import fast_app, inline_function


@pytest.fixture
def stack() -> cdk.Stack:
    """A stack in a new app without cdk.json's flags (the construct must not need them)."""
    return cdk.Stack(fast_app(), "Test")


@pytest.fixture
def compute(stack: cdk.Stack) -> lambda_.Function:
    """A user's compute function in ``stack`` (inline code: no asset to build)."""
    return inline_function(stack, "Compute")
