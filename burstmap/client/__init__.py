"""The client side: describe a job once, run it locally or on AWS through one interface.

    from burstmap.client import run_local
    result = run_local(size=1024)            # the whole app, as `burstmap run` does

Names are loaded on first use: the local backend imports the engine, the AWS backend boto3, and neither
is needed by the other (nor by the engine, which imports burstmap.client.progress).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.client.aws_job import AwsBackend, AwsJob
    from burstmap.client.job import Backend, Job, JobFailed, JobNotFinished, NoResults
    from burstmap.client.job_input import InvalidArgument, InvalidArgumentType, JobInput, JobInputError
    from burstmap.client.local_job import LocalBackend, LocalJob, LocalJobResult, LocalOptions, run_local
    from burstmap.client.output_dir import OutputDir, OutputDirBusy, OutputDirError

_LAZY = {
    "AwsBackend": "burstmap.client.aws_job",
    "AwsJob": "burstmap.client.aws_job",
    "Backend": "burstmap.client.job",
    "Job": "burstmap.client.job",
    "JobFailed": "burstmap.client.job",
    "JobNotFinished": "burstmap.client.job",
    "NoResults": "burstmap.client.job",
    "InvalidArgument": "burstmap.client.job_input",
    "InvalidArgumentType": "burstmap.client.job_input",
    "JobInput": "burstmap.client.job_input",
    "JobInputError": "burstmap.client.job_input",
    "LocalBackend": "burstmap.client.local_job",
    "LocalJob": "burstmap.client.local_job",
    "LocalJobResult": "burstmap.client.local_job",
    "LocalOptions": "burstmap.client.local_job",
    "run_local": "burstmap.client.local_job",
    "OutputDir": "burstmap.client.output_dir",
    "OutputDirBusy": "burstmap.client.output_dir",
    "OutputDirError": "burstmap.client.output_dir",
}

__all__ = [
    "AwsBackend",
    "AwsJob",
    "Backend",
    "InvalidArgument",
    "InvalidArgumentType",
    "Job",
    "JobFailed",
    "JobInput",
    "JobInputError",
    "JobNotFinished",
    "LocalBackend",
    "LocalJob",
    "LocalJobResult",
    "LocalOptions",
    "NoResults",
    "OutputDir",
    "OutputDirBusy",
    "OutputDirError",
    "run_local",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'burstmap.client' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
