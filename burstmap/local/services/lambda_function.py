"""A Lambda function as the local service knows it: its configuration, what an invocation returns, and how a
name or ARN refers to it. What its workers see (interpreter, import path, environment) is built from the
FunctionSpec by lambda_environment.py."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LATEST = "$LATEST"
"""The version every local function has (no publishing, no aliases)."""
PYTHON_RUNTIME = "python3.12"
"""The runtime whose behaviour the workers copy (the conformance cases were recorded on it)."""


@dataclass
class FunctionSpec:
    """One Lambda function, as the engine runs it.

    A ``handler`` string (``module.function``) runs in worker processes that see what the function would
    see on Lambda (lambda_environment.py); a callable runs in the calling thread, without isolation.
    """

    name: str
    handler: str | Callable[..., Any]
    code_paths: list[Path] = field(default_factory=list)
    """The code asset first (``LAMBDA_TASK_ROOT``, the workers' working directory), then any further folders
    to import from, in order. Empty: the handler's module is imported from this Python's own path (a
    ``module:function`` given to ``execute``, not a deployed function)."""
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    """MemorySize: a worker whose processes' resident memory passes it fails with Runtime.OutOfMemory."""
    runtime: str | None = None
    """The Lambda runtime (``python3.13``): the workers run on that Python when this machine has it, else on
    this one, with a warning. None: this Python, nothing to compare."""
    architecture: str | None = None
    """``x86_64`` or ``arm64``; bundled native code for another architecture than this machine's is
    pointed out once. None: not compared."""
    layers: list[Path] = field(default_factory=list)
    """Each layer's content (what Lambda extracts to ``/opt``), in the function's order: its
    ``python/lib/<runtime>/site-packages`` and ``python/`` are imported from, its ``bin/`` and ``lib/`` are
    on ``PATH`` and ``LD_LIBRARY_PATH``."""
    bundled_requirements: Path | None = None
    """The entry folder whose dependency file (Pipfile.lock, poetry.lock, requirements.txt or uv.lock) the
    function's bundling installs into its asset (a PythonFunction or a BurstmapFunction): its packages are
    installed locally (cached) and imported right after the code. None: nothing is installed, as for
    ``Code.from_asset`` (a requirements.txt there is just a file)."""


@dataclass
class Invocation:
    """What lambda:Invoke returned."""

    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str = LATEST


@dataclass
class RuntimeCounters:
    """A snapshot of the runtime's counters (invocations counts every call, throttled ones too)."""

    invocations: int = 0
    throttles: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    workers_started: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def parse_function_reference(reference: str) -> tuple[str, str | None, str | None, str | None]:
    """(name, qualifier, region, account) from a name, ``name:qualifier``, a partial ARN
    (``account:function:name[:qualifier]``) or a full ARN
    (``arn:aws:lambda:region:account:function:name[:qualifier]``)."""
    parts = reference.split(":")
    if parts[0] == "arn" and len(parts) in (7, 8) and parts[2] == "lambda" and parts[5] == "function":
        return parts[6], (parts[7] if len(parts) == 8 else None), parts[3], parts[4]
    if len(parts) in (3, 4) and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) == 4 else None), None, parts[0]
    if len(parts) in (1, 2):
        return parts[0], (parts[1] if len(parts) == 2 else None), None, None
    return reference, None, None, None


def log_stream_name() -> str:
    """A new execution environment's log stream, named as Lambda names it."""
    return f"{time.strftime('%Y/%m/%d')}/[{LATEST}]{uuid.uuid4().hex}"


def function_environment(spec: FunctionSpec, region: str, extra_env: dict[str, str]) -> dict[str, str]:
    """The environment of a worker that imports from this Python's own path (a FunctionSpec without
    code): this process's, minus its AWS_* settings (credentials and profiles must not leak into
    handlers), plus Lambda's reserved variables, the function's variables, and ``extra_env`` (the local
    plumbing: S3 endpoint and fake credentials) last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{PYTHON_RUNTIME}",
            "_HANDLER": str(spec.handler),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if spec.code_paths:
        env["LAMBDA_TASK_ROOT"] = str(spec.code_paths[0])
    env.update({k: str(v) for k, v in spec.environment.items()})
    env.update(extra_env)
    return env
