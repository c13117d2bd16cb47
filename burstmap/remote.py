"""The public path of jobs on AWS: ``from burstmap.remote import BurstmapStack, Job``.

    stack = BurstmapStack.from_stack("BurstmapExample")
    job = Job.start(stack.state_machine_arn, {"size": 1024})
    job.wait(on_progress=print)     # Progress(total, succeeded, failed, running, pending, ...)
    print(job.result())             # the combine output; raises JobFailed with error, cause, first item

``Job`` is the AWS backend's job (:class:`burstmap.client.aws_job.AwsJob`); the same interface runs a job
locally (:mod:`burstmap.client.local_job`). This module keeps the path stable across burstmap's layout.
"""

from burstmap.client.aws import (
    AccessDenied,
    AwsError,
    AwsThrottled,
    BurstmapStack,
    Clients,
    NoCredentials,
    NotFound,
    StackNotFound,
    aws_clients,
)
from burstmap.client.aws_job import AwsBackend
from burstmap.client.aws_job import AwsJob as Job
from burstmap.client.job import JobFailed, JobNotFinished, NoResults
from burstmap.client.results import DownloadedResults

__all__ = [
    "AccessDenied",
    "AwsBackend",
    "AwsError",
    "AwsThrottled",
    "BurstmapStack",
    "Clients",
    "DownloadedResults",
    "Job",
    "JobFailed",
    "JobNotFinished",
    "NoCredentials",
    "NoResults",
    "NotFound",
    "StackNotFound",
    "aws_clients",
]
