"""The same job on AWS: start, watch, read, cancel and redrive one Step Functions execution.

One `Job` object per execution, like Lithops' executor: ``Job.start(arn, input)``, ``.wait()``,
``.progress()``, ``.result()``, ``.cancel()``, ``.redrive()``, ``.download_results(dir)``.
Every AWS call goes through `_call`, which turns botocore's exceptions into `AwsError` subclasses
whose message is one sentence saying what to do, so the CLI never shows a traceback for them.
The clients use botocore's standard retry mode, so throttling and transient errors are retried
(with backoff) before they surface as `AwsThrottled`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

# Shared with local runs, kept under these names for callers of the remote API.
from burstmap.client.job_input import InvalidItemsFile as InvalidItemsFile
from burstmap.client.job_input import build_execution_input as build_execution_input
from burstmap.client.job_input import read_items_file
from burstmap.client.progress import Progress

load_items_file = read_items_file

#: Retries for every client: standard mode retries throttling and transient errors with backoff.
RETRY_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 8}, user_agent_extra="burstmap")

#: Step Functions refuses a state input above 256 KiB; items above this size go through S3 instead.
MAX_INLINE_INPUT_BYTES = 200 * 1024

#: Where `run` uploads an items list too large for the execution input: the stack bucket's items
#: prefix (BurstCompute's default ``items_prefix``), which the start Lambda is granted to read.
ITEMS_UPLOAD_PREFIX = "items"

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


# --------------------------------------------------------------------------------------------- errors
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


class JobNotFinished(Exception):
    """`Job.result()` was called while the execution is still running."""


@dataclass
class FailedItem:
    """One item whose child execution failed, read from the map run's FAILED result files."""

    index: int | None
    item: Any
    error: str | None
    cause: str | None


class JobFailed(Exception):
    """The execution ended without success; carries the ASL error name and cause."""

    def __init__(
        self,
        execution_arn: str,
        status: str,
        error: str | None,
        cause: str | None,
        *,
        first_failure: FailedItem | None = None,
        failed_items: int = 0,
    ) -> None:
        self.execution_arn = execution_arn
        self.status = status
        self.error = error
        self.cause = cause
        self.first_failure = first_failure
        self.failed_items = failed_items
        super().__init__(f"execution {status}: {error or 'no error name'}: {cause or 'no cause given'}")


def _describe_client_error(exc: botocore.exceptions.ClientError, what: str) -> AwsError:
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


def _call(what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
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
        raise _describe_client_error(exc, what) from exc


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


# --------------------------------------------------------------------------------------------- input
def stage_large_items(execution_input: dict[str, Any], s3: Any, bucket: str | None) -> dict[str, Any]:
    """Move an `items` list too large for the 256 KiB state input to S3 as JSONL (`items_s3`)."""
    items = execution_input.get("items")
    if items is None or len(json.dumps(execution_input).encode()) <= MAX_INLINE_INPUT_BYTES:
        return execution_input
    if bucket is None:
        raise AwsError(
            "the items list is over 200 KiB, too large for an execution input: pass --stack so burstmap can "
            "upload it to the stack's bucket, or upload it yourself and pass an items_s3 input"
        )
    key = f"{ITEMS_UPLOAD_PREFIX}/{uuid.uuid4()}.jsonl"
    body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode()
    _call(f"s3://{bucket}/{key}", s3.put_object, Bucket=bucket, Key=key, Body=body)
    staged = {k: v for k, v in execution_input.items() if k != "items"}
    staged["items_s3"] = f"s3://{bucket}/{key}"
    return staged


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
            response = _call(f"stack {name!r}", cloudformation.describe_stacks, StackName=name)
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


# --------------------------------------------------------------------------------------------- job
@dataclass
class DownloadedResults:
    """What `Job.download_results` wrote."""

    directory: Path
    manifest: Path
    result_files: list[Path] = field(default_factory=list)
    failed_items: Path | None = None
    failed_count: int = 0


def _parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _map_run_id(map_run_arn: str) -> str:
    """The id AWS names the ResultWriter folder after: the part after the last ':' of the map run ARN."""
    return map_run_arn.rsplit(":", 1)[-1]


def _failed_items_of_record(record: dict[str, Any]) -> Iterator[FailedItem]:
    """The items of one FAILED child-execution record (a batch holds several items)."""
    try:
        child_input = json.loads(record.get("Input") or "null")
    except json.JSONDecodeError:
        child_input = record.get("Input")
    error, cause = record.get("Error"), record.get("Cause")
    if isinstance(child_input, dict) and isinstance(child_input.get("Items"), list):
        for entry in child_input["Items"]:
            if isinstance(entry, dict):
                yield FailedItem(entry.get("index"), entry.get("item"), error, cause)
            else:
                yield FailedItem(None, entry, error, cause)
    elif isinstance(child_input, dict) and "index" in child_input:
        yield FailedItem(child_input.get("index"), child_input.get("item"), error, cause)
    else:
        yield FailedItem(None, child_input, error, cause)


class Job:
    """One execution of a burstmap state machine on AWS."""

    TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

    def __init__(self, execution_arn: str, *, clients: Clients | None = None) -> None:
        self.execution_arn = execution_arn
        self._clients = clients
        self._description: dict[str, Any] | None = None

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = aws_clients(region=self.execution_arn.split(":")[3] or None)
        return self._clients

    @classmethod
    def start(
        cls,
        state_machine_arn: str,
        execution_input: dict[str, Any],
        *,
        name: str | None = None,
        clients: Clients | None = None,
    ) -> Job:
        """StartExecution with the contract's input; returns the job at once (it runs on AWS)."""
        clients = clients or aws_clients(region=state_machine_arn.split(":")[3] or None)
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "input": json.dumps(execution_input)}
        if name:
            kwargs["name"] = name
        response = _call(f"state machine {state_machine_arn}", clients.sfn.start_execution, **kwargs)
        return cls(response["executionArn"], clients=clients)

    # ---- reading
    def describe(self) -> dict[str, Any]:
        """DescribeExecution (fresh on every call)."""
        sfn = self.clients.sfn
        what = f"execution {self.execution_arn}"
        self._description = _call(what, sfn.describe_execution, executionArn=self.execution_arn)
        return self._description

    @property
    def status(self) -> str:
        return self.describe()["status"]

    def map_run_arns(self) -> list[str]:
        """ListMapRuns: the map runs the execution started (none before the Map state begins)."""
        arns: list[str] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn}
        while True:
            page = _call(f"execution {self.execution_arn}", self.clients.sfn.list_map_runs, **kwargs)
            arns.extend(summary["mapRunArn"] for summary in page.get("mapRuns", []))
            if not page.get("nextToken"):
                return arns
            kwargs["nextToken"] = page["nextToken"]

    def map_runs(self) -> list[dict[str, Any]]:
        """DescribeMapRun of every map run the execution started."""
        return [
            _call(f"map run {arn}", self.clients.sfn.describe_map_run, mapRunArn=arn)
            for arn in self.map_run_arns()
        ]

    def progress(self, *, description: dict[str, Any] | None = None) -> Progress:
        """Item counts summed over the map runs (DescribeMapRun `itemCounts`); total None before the map."""
        description = description or self.describe()
        runs = self.map_runs()
        started = description.get("startDate")
        stopped = description.get("stopDate") or datetime.now(UTC)
        elapsed = (stopped - started).total_seconds() if isinstance(started, datetime) else 0.0
        if not runs:
            return Progress(total=None, elapsed_seconds=max(elapsed, 0.0))
        counts = [run.get("itemCounts", {}) for run in runs]

        def total_of(key: str) -> int:
            return sum(int(c.get(key, 0)) for c in counts)

        return Progress(
            total=total_of("total"),
            succeeded=total_of("succeeded"),
            failed=total_of("failed") + total_of("timedOut") + total_of("aborted"),
            running=total_of("running"),
            pending=total_of("pending"),
            elapsed_seconds=max(elapsed, 0.0),
        )

    def wait(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the execution ends; returns the final DescribeExecution response."""
        while True:
            description = self.describe()
            if on_progress is not None:
                on_progress(self.progress(description=description))
            if description["status"] in self.TERMINAL:
                return description
            sleep(poll_seconds)

    def result(self) -> dict[str, Any]:
        """The execution output as JSON; raises `JobFailed` (error, cause, first failing item) on failure."""
        description = self._description if self._is_final(self._description) else self.describe()
        status = description["status"]
        if status == "SUCCEEDED":
            return json.loads(description.get("output") or "null")
        if status not in self.TERMINAL:
            raise JobNotFinished(f"execution {self.execution_arn} is still {status}: wait for it first")
        first, count = self._first_failure()
        raise JobFailed(
            self.execution_arn,
            status,
            description.get("error"),
            description.get("cause"),
            first_failure=first,
            failed_items=count,
        )

    def _is_final(self, description: dict[str, Any] | None) -> bool:
        return description is not None and description.get("status") in self.TERMINAL

    # ---- operating
    def cancel(self, *, cause: str = "cancelled with burstmap cancel") -> datetime:
        """StopExecution; running children are aborted by Step Functions. Returns the stop date."""
        response = _call(
            f"execution {self.execution_arn}",
            self.clients.sfn.stop_execution,
            executionArn=self.execution_arn,
            error="burstmap.Cancelled",
            cause=cause,
        )
        return response["stopDate"]

    def redrive(self) -> datetime:
        """RedriveExecution: rerun only the failed, aborted or timed-out parts (within 14 days)."""
        response = _call(
            f"execution {self.execution_arn}",
            self.clients.sfn.redrive_execution,
            executionArn=self.execution_arn,
            clientToken=str(uuid.uuid4()),
        )
        self._description = None
        return response["redriveDate"]

    # ---- results
    def manifest_uris(self) -> list[str]:
        """s3:// URIs of the ResultWriter manifests: from the combine output, else from the definition."""
        description = self._description if self._is_final(self._description) else self.describe()
        if description.get("output"):
            output = json.loads(description["output"])
            if isinstance(output, dict) and isinstance(output.get("manifest"), str):
                return [output["manifest"]]
        return self._manifests_from_definition(description)

    def _manifests_from_definition(self, description: dict[str, Any]) -> list[str]:
        """Where AWS writes each map run's manifest: `<Prefix>/<map run id>/manifest.json`."""
        machine = _call(
            f"state machine {description['stateMachineArn']}",
            self.clients.sfn.describe_state_machine,
            stateMachineArn=description["stateMachineArn"],
        )
        writers = list(
            dict.fromkeys(_result_writers(json.loads(machine["definition"])))
        )  # both maps share one
        uris: list[str] = []
        for map_run_arn in self.map_run_arns():
            for bucket, prefix in writers:
                key = f"{prefix.rstrip('/')}/{_map_run_id(map_run_arn)}/manifest.json".lstrip("/")
                if self._exists(bucket, key):
                    uris.append(f"s3://{bucket}/{key}")
        return uris

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self.clients.s3.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise _describe_client_error(exc, f"s3://{bucket}/{key}") from exc
        return True

    def _read_json(self, bucket: str, key: str) -> Any:
        response = _call(f"s3://{bucket}/{key}", self.clients.s3.get_object, Bucket=bucket, Key=key)
        body = response["Body"].read()
        return _parse_result_file(body)

    def _manifests(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for uri in self.manifest_uris():
            bucket, key = _parse_s3_uri(uri)
            yield bucket, key, self._read_json(bucket, key)

    def failed_items(self) -> Iterator[FailedItem]:
        """Every failed item, streamed from the FAILED result files of every manifest."""
        for _, _, manifest in self._manifests():
            bucket = manifest.get("DestinationBucket")
            for entry in manifest.get("ResultFiles", {}).get("FAILED", []):
                for record in self._read_json(bucket, entry["Key"]):
                    yield from _failed_items_of_record(record)

    def _first_failure(self) -> tuple[FailedItem | None, int]:
        """The first failed item and the failed count; (None, 0) when AWS recorded none (or no access)."""
        try:
            first: FailedItem | None = None
            count = 0
            for item in self.failed_items():
                first = first or item
                count += 1
            return first, count
        except (AwsError, ValueError):
            return None, 0

    def download_results(self, directory: Path) -> DownloadedResults:
        """Copy each manifest and its result files into `directory`, and write failed_items.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifests = list(self._manifests())
        if not manifests:
            raise NotFound(
                f"execution {self.execution_arn} has no ResultWriter manifest yet: wait for the Map state to "
                "finish (burstmap status shows it)"
            )
        written: DownloadedResults | None = None
        failed: list[dict[str, Any]] = []
        for number, (bucket, _key, manifest) in enumerate(manifests):
            name = "manifest.json" if number == 0 else f"manifest_{number}.json"
            manifest_path = directory / name
            manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            written = written or DownloadedResults(directory=directory, manifest=manifest_path)
            destination = manifest.get("DestinationBucket") or bucket
            for status in ("SUCCEEDED", "FAILED", "PENDING"):
                for entry in manifest.get("ResultFiles", {}).get(status, []):
                    target = directory / Path(entry["Key"]).name
                    if number:
                        target = directory / f"{number}_{target.name}"
                    body = _call(
                        f"s3://{destination}/{entry['Key']}",
                        self.clients.s3.get_object,
                        Bucket=destination,
                        Key=entry["Key"],
                    )["Body"].read()
                    target.write_bytes(body)
                    written.result_files.append(target)
                    if status == "FAILED":
                        for record in _parse_result_file(body):
                            failed.extend(
                                {"index": f.index, "item": f.item, "error": f.error, "cause": f.cause}
                                for f in _failed_items_of_record(record)
                            )
        assert written is not None
        written.failed_items = directory / "failed_items.json"
        written.failed_items.write_text(json.dumps(failed, indent=2), encoding="utf-8")
        written.failed_count = len(failed)
        return written


def _parse_result_file(body: bytes) -> Any:
    """A ResultWriter file: one JSON document, or JSON Lines (WriterConfig OutputType JSONL)."""
    text = body.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _result_writers(definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(bucket, prefix) of every Map state's ResultWriter with literal values, at any depth."""
    for state in definition.get("States", {}).values():
        writer = state.get("ResultWriter")
        if isinstance(writer, dict):
            parameters = writer.get("Parameters") or writer.get("Arguments") or {}
            if isinstance(parameters.get("Bucket"), str):
                yield parameters["Bucket"], str(parameters.get("Prefix", ""))
        for branch in state.get("Branches", []):
            yield from _result_writers(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            yield from _result_writers(processor)
