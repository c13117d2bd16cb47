"""Why an app cannot be synthesized or run locally: each error's message says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class AssemblyError(Exception):
    """A cloud assembly that cannot be synthesized or run locally; the message says what to do."""


class SynthesisError(AssemblyError):
    """``python app.py`` failed or produced no cloud assembly."""


class UnresolvableToken(AssemblyError):
    """A CloudFormation token that has no local value, named by stack, resource and property."""

    def __init__(self, stack: str, resource: str, prop: str, token: Any, reason: str) -> None:
        self.stack = stack
        self.resource = resource
        self.property = prop
        self.token = token
        super().__init__(
            f"cannot resolve {json.dumps(token)} in {stack}/{resource} property {prop} locally: {reason}. "
            "The local engine resolves Ref/Fn::GetAtt of Lambda functions, layers, S3 buckets, state "
            "machines, IAM roles and log groups of the same stack; use a literal value (or an environment "
            "variable set in the app) for anything else."
        )


def read_json(path: Path) -> Any:
    """A JSON file of the app or its assembly ({} when absent); AssemblyError names one that is not JSON."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise AssemblyError(f"{path} is not valid JSON ({exc}): fix or delete it") from exc
