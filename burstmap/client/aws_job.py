"""The same job on AWS: start, watch, read, cancel and redrive one Step Functions execution.

:class:`AwsBackend` starts jobs on a deployed state machine (a stack's, or one named by ARN), staging an
items list too large for the execution input in the stack's bucket first. :class:`AwsJob` is one
execution: ``AwsJob.start(arn, input)``, ``.wait()``, ``.progress()``, ``.result()``, ``.cancel()``,
``.redrive()``, ``.download_results(dir)``; an existing execution is ``AwsJob(execution_arn)``.
Its public path is ``burstmap.remote.Job``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from burstmap.client import aws
from burstmap.client.aws import AwsError, Clients, call, region_of
from burstmap.client.job import Job, JobNotFinished, NoResults, OnProgress
from burstmap.client.job_input import (
    InvalidArgument,
    InvalidArgumentType,
    JobInput,
    json_bytes,
    needs_staging,
    stage_items,
)
from burstmap.client.results import UNREADABLE as UNREADABLE_RESULTS
from burstmap.client.results import S3Object, manifest_named_by, manifests_of_map_runs
from burstmap.local.core.progress import Progress
from burstmap.runtime.contracts import STATE_PAYLOAD_LIMIT_BYTES

DEFAULT_POLL_SECONDS = 2.0


def checked_poll_seconds(value: Any) -> float:
    """Seconds between two polls of an execution: a finite number, 0 or more (InvalidArgument otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType(
            "poll_seconds", value, f"must be a number of seconds, got {type(value).__name__}"
        )
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgument("poll_seconds", value, "must be a finite number of seconds, 0 or more")
    return float(value)


class AwsJob(Job):
    """One execution of a burstmap state machine on AWS."""

    TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
    _unreadable: ClassVar[tuple[type[Exception], ...]] = (*UNREADABLE_RESULTS, AwsError)

    def __init__(
        self,
        execution_arn: str,
        *,
        clients: Clients | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.execution_arn = execution_arn
        self.poll_seconds = checked_poll_seconds(poll_seconds)
        self._clients = clients
        self._description: dict[str, Any] | None = None
        self._last_progress: Progress | None = None

    @property
    def id(self) -> str:
        return self.execution_arn

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = aws.aws_clients(region=region_of(self.execution_arn))
        return self._clients

    @classmethod
    def start(
        cls,
        state_machine_arn: str,
        execution_input: dict[str, Any],
        *,
        name: str | None = None,
        clients: Clients | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> AwsJob:
        """StartExecution with the contract's input; returns the job at once (it runs on AWS).

        The arguments are checked before AWS is called: InvalidArgument (a ValueError; the TypeError kind
        for a wrong type) names the one that cannot start (an input that is not a JSON object, holds
        what JSON cannot carry, or passes the 256 KiB AWS accepts; a name that is not a string).
        """
        checked_poll_seconds(poll_seconds)
        region = region_of(state_machine_arn)  # InvalidArn for anything else
        input_text = _checked_input(execution_input)
        if name is not None and not isinstance(name, str):
            raise InvalidArgumentType(
                "name", name, f"must be the execution's name (a str), got {type(name).__name__}"
            )
        clients = clients or aws.aws_clients(region=region)
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "input": input_text}
        if name:
            kwargs["name"] = name
        response = call(f"state machine {state_machine_arn}", clients.sfn.start_execution, **kwargs)
        return cls(response["executionArn"], clients=clients, poll_seconds=poll_seconds)

    # ---- reading
    def describe(self) -> dict[str, Any]:
        """DescribeExecution (fresh on every call)."""
        sfn = self.clients.sfn
        what = f"execution {self.execution_arn}"
        self._description = call(what, sfn.describe_execution, executionArn=self.execution_arn)
        return self._description

    @property
    def status(self) -> str:
        return self.describe()["status"]

    def map_run_arns(self) -> list[str]:
        """ListMapRuns: the map runs the execution started (none before the Map state begins)."""
        arns: list[str] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn}
        while True:
            page = call(f"execution {self.execution_arn}", self.clients.sfn.list_map_runs, **kwargs)
            arns.extend(summary["mapRunArn"] for summary in page.get("mapRuns", []))
            if not page.get("nextToken"):
                return arns
            kwargs["nextToken"] = page["nextToken"]

    def map_runs(self) -> list[dict[str, Any]]:
        """DescribeMapRun of every map run the execution started."""
        return [
            call(f"map run {arn}", self.clients.sfn.describe_map_run, mapRunArn=arn)
            for arn in self.map_run_arns()
        ]

    def progress(self, *, description: dict[str, Any] | None = None) -> Progress:
        """Item counts summed over the map runs (DescribeMapRun `itemCounts`); total None before the map."""
        description = description or self.describe()
        runs = self.map_runs()
        started = description.get("startDate")
        stopped = description.get("stopDate") or datetime.now(UTC)
        elapsed = max((stopped - started).total_seconds() if isinstance(started, datetime) else 0.0, 0.0)
        return Progress.of_map_runs(
            [run.get("itemCounts", {}) for run in runs],
            elapsed_seconds=elapsed,
            execution_counts=[run.get("executionCounts", {}) for run in runs],
        )

    def wait(
        self,
        *,
        on_progress: OnProgress | None = None,
        poll_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the execution ends; returns the final DescribeExecution response."""
        while True:
            description = self.describe()
            if on_progress is not None:
                self._last_progress = self.progress(description=description)
                on_progress(self._last_progress)
            if description["status"] in self.TERMINAL:
                return description
            sleep(self.poll_seconds if poll_seconds is None else poll_seconds)

    def result(self) -> Any:
        """The execution output as JSON; raises `JobFailed` (error, cause, first failing item) on failure."""
        description = self._final_description()
        status = description["status"]
        if status == "SUCCEEDED":
            return json.loads(description.get("output") or "null")
        if status not in self.TERMINAL:
            raise JobNotFinished(f"execution {self.execution_arn} is still {status}: wait for it first")
        raise self._failed(status, description.get("error"), description.get("cause"))

    def stats(self) -> dict[str, Any]:
        """Wall time and item counts, from the last progress seen (or asked for now)."""
        final = self._last_progress or self.progress()
        return {
            "wall_seconds": round(final.elapsed_seconds, 3),
            "items_total": final.total,
            "items_succeeded": final.succeeded,
            "items_failed": final.failed,
        }

    def status_report(self) -> dict[str, Any]:
        """The execution's status and its map runs' DescribeMapRun counts (``burstmap status`` prints it)."""
        description = self.describe()
        return {
            "executionArn": description["executionArn"],
            "name": description.get("name"),
            "status": description["status"],
            "startDate": description.get("startDate"),
            "stopDate": description.get("stopDate"),
            "error": description.get("error"),
            "cause": description.get("cause"),
            "redriveCount": description.get("redriveCount", 0),
            "mapRuns": [
                {
                    "mapRunArn": run["mapRunArn"],
                    "status": run.get("status"),
                    "itemCounts": run.get("itemCounts"),
                    "executionCounts": run.get("executionCounts"),
                }
                for run in self.map_runs()
            ],
        }

    def interrupted(self) -> str:
        return f"still running on AWS: `burstmap cancel {self.execution_arn}` stops it"

    def _final_description(self) -> dict[str, Any]:
        """The last description when it is final (no call needed), else a fresh one."""
        if self._description is not None and self._description.get("status") in self.TERMINAL:
            return self._description
        return self.describe()

    # ---- operating
    def cancel(self, *, cause: str = "cancelled with burstmap cancel") -> datetime:
        """StopExecution; running children are aborted by Step Functions. Returns the stop date."""
        response = call(
            f"execution {self.execution_arn}",
            self.clients.sfn.stop_execution,
            executionArn=self.execution_arn,
            error="burstmap.Cancelled",
            cause=cause,
        )
        return response["stopDate"]

    def redrive(self) -> datetime:
        """RedriveExecution: rerun only the failed, aborted or timed-out parts (within 14 days)."""
        response = call(
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
        with self._reading_results():
            return [f"s3://{bucket}/{key}" for bucket, key in self._manifests()]

    def _manifests(self) -> list[S3Object]:
        description = self._final_description()
        named = manifest_named_by(json.loads(description["output"]) if description.get("output") else None)
        if named is not None:
            return [named]
        machine = call(
            f"state machine {description['stateMachineArn']}",
            self.clients.sfn.describe_state_machine,
            stateMachineArn=description["stateMachineArn"],
        )
        definition = json.loads(machine["definition"])
        return manifests_of_map_runs(self.clients.s3, definition, self.map_run_arns())

    def _results_s3(self) -> Any:
        return self.clients.s3

    def _reading_results(self) -> contextlib.AbstractContextManager[None]:
        return aws.reading_results(f"the results of execution {self.execution_arn}")

    def _no_results(self) -> NoResults:
        return NoResults(
            f"execution {self.execution_arn} has no ResultWriter manifest yet: wait for the Map state to "
            "finish (burstmap status shows it)"
        )


def _checked_input(execution_input: Any) -> str:
    """The execution input as the JSON text StartExecution takes."""
    if not isinstance(execution_input, dict):
        raise InvalidArgumentType(
            "execution_input",
            execution_input,
            'must be the execution input, a JSON object such as {"size": 1024}, got '
            f"{type(execution_input).__name__}",
        )
    json_bytes(execution_input, "execution_input")
    text = json.dumps(execution_input)
    size = len(text.encode())
    if size > STATE_PAYLOAD_LIMIT_BYTES:
        raise InvalidArgument(
            "execution_input",
            execution_input,
            f"takes {size} bytes of JSON, more than the {STATE_PAYLOAD_LIMIT_BYTES} StartExecution accepts: "
            'pass a large item list as {"items_s3": "s3://bucket/key.jsonl"} (AwsBackend uploads it for you)',
        )
    return text


@dataclass
class AwsBackend:
    """Jobs on one deployed state machine; ``bucket`` (the stack's) is where large item lists are staged."""

    state_machine_arn: str
    bucket: str | None = None
    clients: Clients | None = None
    execution_name: str | None = None
    poll_seconds: float = DEFAULT_POLL_SECONDS

    cannot_start: ClassVar[tuple[type[BaseException], ...]] = ()  # AwsError says what to do already

    def __post_init__(self) -> None:
        self.poll_seconds = checked_poll_seconds(self.poll_seconds)

    @classmethod
    def for_stack(
        cls, stack: str, *, region: str | None = None, profile: str | None = None, **options: Any
    ) -> AwsBackend:
        """The state machine and bucket of a deployed stack (its outputs StateMachineArn, BucketName)."""
        checked_poll_seconds(options.get("poll_seconds", DEFAULT_POLL_SECONDS))  # before any AWS call
        clients = aws.aws_clients(region=region, profile=profile)
        resolved = aws.BurstmapStack.from_stack(stack, cloudformation=clients.cloudformation)
        return cls(resolved.state_machine_arn, bucket=resolved.bucket_name, clients=clients, **options)

    @classmethod
    def for_state_machine(
        cls, arn: str, *, region: str | None = None, profile: str | None = None, **options: Any
    ) -> AwsBackend:
        checked_poll_seconds(options.get("poll_seconds", DEFAULT_POLL_SECONDS))
        arn_region = region_of(arn)  # InvalidArn before any AWS call
        clients = aws.aws_clients(region=region or arn_region, profile=profile)
        return cls(arn, clients=clients, **options)

    def start(self, job_input: JobInput) -> AwsJob:
        """Start the execution (staging a large items list first) and return it while it runs."""
        clients = self.clients or aws.aws_clients(region=region_of(self.state_machine_arn))
        execution_input = job_input.execution_input
        if needs_staging(execution_input):
            execution_input = self._staged(execution_input, clients)
        return AwsJob.start(
            self.state_machine_arn,
            execution_input,
            name=self.execution_name,
            clients=clients,
            poll_seconds=self.poll_seconds,
        )

    def _staged(self, execution_input: dict[str, Any], clients: Clients) -> dict[str, Any]:
        if self.bucket is None:
            raise AwsError(
                "the items list is over 200 KiB, too large for an execution input: pass --stack so burstmap "
                "can upload it to the stack's bucket, or upload it yourself and pass an items_s3 input"
            )

        def put_object(**kwargs: Any) -> Any:
            return call(f"s3://{kwargs['Bucket']}/{kwargs['Key']}", clients.s3.put_object, **kwargs)

        return stage_items(execution_input, self.bucket, put_object)
