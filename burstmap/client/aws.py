"""AWS calls for jobs on AWS: the clients, one-line errors, and a deployed burstmap stack.

Every AWS call goes through `call`, which turns botocore's exceptions into `AwsError` subclasses whose
message is one sentence saying what to do, so the CLI never shows a traceback for them. The clients use
botocore's standard retry mode, so throttling and transient errors are retried (with backoff) before they
surface as `AwsThrottled`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from burstmap.runtime.results import ResultReadError

#: Retries for every client: standard mode retries throttling and transient errors with backoff.
RETRY_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 8}, user_agent_extra="burstmap")

_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}
_ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_NOT_FOUND_CODES = {
    "ExecutionDoesNotExist",
    "StateMachineDoesNotExist",
    "ResourceNotFound",
    "NoSuchBucket",
    "NoSuchKey",
    "404",
}


class AwsError(Exception):
    """An AWS call failed; the message is one line that says what to do (no traceback needed)."""


class NoCredentials(AwsError):
    """No AWS credentials (or no region) could be found."""


class StackNotFound(AwsError):
    """The CloudFormation stack does not exist, or lacks burstmap's outputs."""


class AccessDenied(AwsError):
    """The caller's IAM identity may not perform the call."""


class AwsThrottled(AwsError):
    """AWS kept throttling after the standard retry mode gave up."""


class NotFound(AwsError):
    """The execution, state machine or object does not exist."""


def describe_client_error(exc: botocore.exceptions.ClientError, what: str) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).strip() or code
    operation = exc.operation_name
    if code in _ACCESS_DENIED_CODES or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
        return AccessDenied(
            f"access denied: {operation} on {what} ({message}); "
            "ask for that permission or use a role that has it"
        )
    if code in _THROTTLING_CODES:
        attempts = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
        return AwsThrottled(
            f"AWS kept throttling {operation} on {what} after {attempts} attempts; "
            "wait a minute and try again"
        )
    if code in _NOT_FOUND_CODES:
        return NotFound(f"{what} not found ({operation}: {message}); check the ARN and the region")
    if code == "ExecutionNotRedrivable":
        return AwsError(f"{what} cannot be redriven: {message}")
    return AwsError(f"AWS error {code} in {operation} on {what}: {message}")


def call(what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call one AWS API method, turning botocore exceptions into one-line `AwsError`s."""
    try:
        return method(**kwargs)
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
        raise NoCredentials(
            "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from exc
    except botocore.exceptions.NoRegionError as exc:
        raise NoCredentials("no AWS region configured: pass --region or set AWS_REGION") from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise AwsError(f"cannot reach AWS for {what}: {exc}; check the network and the region") from exc
    except botocore.exceptions.ClientError as exc:
        raise describe_client_error(exc, what) from exc


# --------------------------------------------------------------------------------------------- clients
@dataclass
class Clients:
    """The three AWS clients a job needs (injectable, so tests can pass stubbed ones)."""

    sfn: Any
    s3: Any
    cloudformation: Any


def aws_clients(region: str | None = None, profile: str | None = None) -> Clients:
    """Clients with standard-mode retries, from the default credential chain (or a named profile)."""
    try:
        session = boto3.session.Session(region_name=region, profile_name=profile)
        return Clients(
            sfn=session.client("stepfunctions", config=RETRY_CONFIG),
            s3=session.client("s3", config=RETRY_CONFIG),
            cloudformation=session.client("cloudformation", config=RETRY_CONFIG),
        )
    except botocore.exceptions.ProfileNotFound as exc:
        raise NoCredentials(f"AWS profile {profile!r} not found: check ~/.aws/config or AWS_PROFILE") from exc
    except botocore.exceptions.NoRegionError as exc:
        raise NoCredentials("no AWS region configured: pass --region or set AWS_REGION") from exc


@contextlib.contextmanager
def reading_results(what: str) -> Iterator[None]:
    """Reads of result files (burstmap.runtime.results) fail with `ResultReadError`: as one-line
    `AwsError`s like every other AWS call."""
    try:
        yield
    except ResultReadError as exc:
        cause = exc.__cause__
        if isinstance(cause, botocore.exceptions.ClientError):
            raise describe_client_error(cause, what) from cause
        raise AwsError(f"{exc} ({what})") from exc


class InvalidArn(AwsError):
    """What was given as an ARN is not one."""


def region_of(arn: str) -> str | None:
    """The region of an ARN (None when its region field is empty); InvalidArn for anything else."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise InvalidArn(f"not an ARN: {arn!r} (expected arn:aws:states:REGION:ACCOUNT:...)")
    return parts[3] or None


# --------------------------------------------------------------------------------------------- stack
@dataclass(frozen=True)
class BurstmapStack:
    """A deployed burstmap stack: the state machine to start and the bucket holding the results."""

    name: str
    state_machine_arn: str
    bucket_name: str | None

    @classmethod
    def from_stack(cls, name: str, *, cloudformation: Any | None = None) -> BurstmapStack:
        """Resolve the stack's outputs `StateMachineArn` and `BucketName`."""
        cloudformation = cloudformation or aws_clients().cloudformation
        try:
            response = call(f"stack {name!r}", cloudformation.describe_stacks, StackName=name)
        except AwsError as exc:
            cause = exc.__cause__
            if isinstance(cause, botocore.exceptions.ClientError) and "does not exist" in str(
                cause.response.get("Error", {}).get("Message", "")
            ):
                raise StackNotFound(
                    f"stack {name!r} not found in {cloudformation.meta.region_name}: deploy it with "
                    "`cdk deploy`, or pass --region / --state-machine-arn"
                ) from cause
            raise
        stacks = response.get("Stacks", [])
        declared = stacks[0].get("Outputs", []) if stacks else []
        outputs = {o["OutputKey"]: o.get("OutputValue") for o in declared}
        arn = outputs.get("StateMachineArn")
        if not arn:
            raise StackNotFound(
                f"stack {name!r} has no output StateMachineArn: is it a burstmap stack (BurstCompute), "
                "and has its deployment finished?"
            )
        return cls(name=name, state_machine_arn=arn, bucket_name=outputs.get("BucketName"))
