"""pytest plugin for .ci/check-oldest-cdk: the synth tests on an aws-cdk-lib release before 2.275.

aws-cdk-lib 2.275.0 added the built-in CloudFormation validator and its switch,
``App(builtin_cloud_formation_validation=...)``, which the tests turn off to keep synth fast. An earlier
release has no validator, so an App built without the argument is the app the tests mean; the one test
that turns the validator on is skipped there. Nothing else is changed: every other assertion runs as is.
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import version
from typing import Any

import aws_cdk as cdk
import pytest

_SWITCH = "builtin_cloud_formation_validation"


def pytest_configure(config: pytest.Config) -> None:
    if _SWITCH in inspect.signature(cdk.App.__init__).parameters:
        return
    original = cdk.App.__init__

    @functools.wraps(original)
    def app_init(self: cdk.App, *args: Any, **kwargs: Any) -> None:
        if kwargs.pop(_SWITCH, False):
            pytest.skip(f"aws-cdk-lib {version('aws-cdk-lib')} has no built-in CloudFormation validator")
        original(self, *args, **kwargs)

    cdk.App.__init__ = app_init  # type: ignore[method-assign]
