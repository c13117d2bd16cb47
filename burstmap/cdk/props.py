"""Every BurstCompute prop, once: its type, its default, what it is for, and the checks on it.

``BurstCompute(scope, id, **props)`` takes the fields of :class:`BurstComputeProps` as keyword arguments;
a field left out takes the default written here (``None`` where the default depends on other props, as the
field's doc says). :meth:`BurstComputeProps.validate` returns one plain sentence per contradiction, and
the construct raises them together before it builds anything. The README's Props table mirrors this
module; the measurements behind the defaults are in the README (Batching, Retry defaults).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from burstmap.runtime.contracts import (
    DEFAULT_ITEMS_PREFIX,
    DEFAULT_MAX_INPUT_BYTES_PER_BATCH,
    DEFAULT_RESULT_PREFIX,
    MAX_BATCH_INPUT_BYTES,
    MAX_DISTRIBUTED_CONCURRENCY,
)

#: Python 3.13: the newest Python runtime this project supports and tests (AL2023 base, supported to 2029).
DEFAULT_RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Graviton: about 20 % cheaper per GB-second than x86_64; the handlers are pure Python (no native wheels).
DEFAULT_ARCHITECTURE = lambda_.Architecture.ARM_64
#: 10,000 invocations, 30 % sustained throttling, > 99.9 % completion: 10_000 * 0.3 ** 14 < 1e-3.
DEFAULT_RETRY_ATTEMPTS = 13
#: Below the default account concurrency quota (1,000) so start, combine and other functions still run.
DEFAULT_MAX_CONCURRENCY = 900
#: Items per child: the smallest measured size that captures 95 % of batching's saving (README, Batching).
DEFAULT_BATCH_SIZE = 50
#: ResultWriter transformations the default combiner reads exactly (FLATTEN loses which results were a batch).
RESULT_TRANSFORMATIONS = (sfn.Transformation.COMPACT, sfn.Transformation.NONE)
#: Defaults of the Duration props (``None`` in the signature: a Duration is not a constant).
DEFAULT_RETRY_INTERVAL_SECONDS = 1
DEFAULT_RETRY_MAX_DELAY_SECONDS = 30
DEFAULT_JOB_TIMEOUT_HOURS = 24

_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9!_.*'()\-][A-Za-z0-9!_.*'()\-/]*$")
_REQUIRED: Any = object()


class BurstComputeValidationError(ValueError):
    """The construct's props contradict each other or AWS limits; the message says what to change."""


def _prop(default: Any, doc: str) -> Any:
    """A field with its documentation (``Default: ...`` included), readable by tools and tests."""
    if default is _REQUIRED:
        return field(metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, kw_only=True)
class BurstComputeProps:
    """The props of :class:`burstmap.cdk.construct.BurstCompute`; only ``compute`` is required."""

    compute: lambda_.IFunction = _prop(
        _REQUIRED,
        "The function run once per item, or per batch when batch_size > 1; a handler written with "
        "burstmap.compute.compute_handler takes both shapes. Required.",
    )
    start: lambda_.IFunction | None = _prop(
        None,
        "Validates the execution input and emits the items. Default: burstmap's start Lambda "
        "(lambdas/start) with the runtime layer.",
    )
    combine: lambda_.IFunction | None = _prop(
        None,
        "Aggregates the ResultWriter output into the execution's output. Default: burstmap's exact-sum "
        "Lambda (lambdas/combine) with the runtime layer.",
    )
    batch_size: int = _prop(
        DEFAULT_BATCH_SIZE,
        "Items per child execution; above 1 adds an ItemBatcher (MaxItemsPerBatch) and moves the job "
        "parameters into BatchInput. Use 1 for slow items or large results (a batch's results share "
        "256 KiB). Default: 50 (measured: README, Batching).",
    )
    max_input_bytes_per_batch: int | None = _prop(
        None,
        "ItemBatcher MaxInputBytesPerBatch (1 to 262,144; needs batch_size > 1). Default: 195,584 when "
        "batched (256 KiB less room for 64 KiB of job parameters and the envelope).",
    )
    max_concurrency: int = _prop(
        DEFAULT_MAX_CONCURRENCY,
        "Child executions running at once (1 to 10,000). Default: 900, below the default account "
        "concurrency quota of 1,000.",
    )
    tolerated_failure_percentage: float | None = _prop(
        None,
        "Share of failed items the Map tolerates (0-100; an explicit 0 renders). Default: none, the first "
        "failed item fails the Map.",
    )
    tolerated_failure_count: int | None = _prop(
        None,
        "Number of failed items the Map tolerates (>= 0; an explicit 0 renders). Default: none, the first "
        "failed item fails the Map.",
    )
    bucket: s3.IBucket | None = _prop(
        None,
        "Where item lists and results live; a bucket with a customer-managed KMS key (its encryption_key) "
        "has that key granted to every reader and writer. Default: a new bucket with public access "
        "blocked, TLS enforced, S3-managed encryption, and job objects expiring after expire_after_days.",
    )
    result_prefix: str = _prop(
        DEFAULT_RESULT_PREFIX, 'ResultWriter prefix (manifest and result files). Default: "results".'
    )
    result_transformation: sfn.Transformation = _prop(
        sfn.Transformation.COMPACT,
        "ResultWriter WriterConfig.Transformation: COMPACT (each child's output alone) or NONE (each "
        "child's input, output and metadata); failed children are written whole either way. "
        "Default: Transformation.COMPACT.",
    )
    items_prefix: str = _prop(
        DEFAULT_ITEMS_PREFIX, 'Prefix of the item lists start writes and the Map reads. Default: "items".'
    )
    expire_after_days: int = _prop(
        30, "Lifecycle expiry of the objects under both prefixes (created bucket only). Default: 30."
    )
    item_source_buckets: Sequence[s3.IBucket] = _prop(
        (),
        'Other buckets {"items_s3": ...} lists may live in; start and the state machine get read access. '
        "Default: none (lists under items_prefix in bucket).",
    )
    retry_attempts: int = _prop(
        DEFAULT_RETRY_ATTEMPTS,
        "Retries of Lambda.TooManyRequestsException on every task (0 to 99,999,999). Default: 13 "
        "(README, Retry defaults).",
    )
    retry_interval: cdk.Duration | None = _prop(
        None, "Wait before the first throttling retry (at least 1 second). Default: 1 second."
    )
    retry_backoff_rate: float = _prop(2.0, "Multiplier of the wait per retry (at least 1.0). Default: 2.0.")
    retry_max_delay: cdk.Duration | None = _prop(
        None,
        "Cap on one retry wait (MaxDelaySeconds), full jitter below it; at least retry_interval. "
        "Default: 30 seconds.",
    )
    job_timeout: cdk.Duration | None = _prop(None, "Timeout of a whole execution. Default: 24 hours.")
    log_level: sfn.LogLevel = _prop(
        sfn.LogLevel.ERROR,
        "State machine log level (ALL logs several events per child execution). Default: LogLevel.ERROR.",
    )
    log_group: logs.ILogGroup | None = _prop(
        None,
        "State machine log destination. Default: a new log group kept for log_retention, named "
        "/aws/vendedlogs/states/<state machine name or construct path>-Logs.",
    )
    log_retention: logs.RetentionDays = _prop(
        logs.RetentionDays.ONE_MONTH,
        "Retention of the log groups the construct creates. Default: RetentionDays.ONE_MONTH.",
    )
    tracing: bool = _prop(False, "X-Ray tracing of the state machine. Default: False.")
    state_machine_name: str | None = _prop(
        None, "Physical state machine name. Default: generated by CloudFormation."
    )
    runtime: lambda_.Runtime = _prop(
        DEFAULT_RUNTIME, "Runtime of the default start and combine functions. Default: Python 3.13."
    )
    architecture: lambda_.Architecture = _prop(
        DEFAULT_ARCHITECTURE, "Architecture of the default start and combine functions. Default: ARM_64."
    )
    input_prefix: str | None = _prop(
        None,
        "When set, the items are the objects under <bucket>/<input_prefix>/ (ItemReader listObjectsV2) and "
        'each compute gets {"bucket", "key", "output_prefix"} as its item; there is no start step. '
        "Default: none (the items come from the execution input through start).",
    )
    output_prefix: str = _prop(
        "output",
        "Where compute writes in input_prefix mode (it gets write access when it has a role). "
        'Default: "output".',
    )
    start_on_upload: bool = _prop(
        False,
        "With input_prefix, an EventBridge rule starts a job whenever an object is created under it; the "
        "bucket's EventBridge notifications are turned on (the created bucket, or a given s3.Bucket of "
        "this app; an imported bucket is refused). Default: False.",
    )
    compute_reserved_concurrency: int | None = _prop(
        None,
        "Reserved concurrency set on compute; needs a Function defined in this app. Below max_concurrency "
        "it is a synth warning: the children beyond it are throttled and retried. Default: none (the "
        "account's unreserved pool).",
    )

    # ----------------------------------------------------------------------------------------------
    # defaults that depend on other props, resolved once

    @property
    def batched(self) -> bool:
        """Whether children get batches (an ItemBatcher) rather than one item each."""
        return self.batch_size > 1

    @property
    def resolved_max_input_bytes_per_batch(self) -> int | None:
        """ItemBatcher ``MaxInputBytesPerBatch``; None without batching."""
        if not self.batched:
            return None
        if self.max_input_bytes_per_batch is None:
            return DEFAULT_MAX_INPUT_BYTES_PER_BATCH
        return self.max_input_bytes_per_batch

    @property
    def resolved_retry_interval(self) -> cdk.Duration:
        if self.retry_interval is None:
            return cdk.Duration.seconds(DEFAULT_RETRY_INTERVAL_SECONDS)
        return self.retry_interval

    @property
    def resolved_retry_max_delay(self) -> cdk.Duration:
        if self.retry_max_delay is None:
            return cdk.Duration.seconds(DEFAULT_RETRY_MAX_DELAY_SECONDS)
        return self.retry_max_delay

    @property
    def resolved_job_timeout(self) -> cdk.Duration:
        if self.job_timeout is None:
            return cdk.Duration.hours(DEFAULT_JOB_TIMEOUT_HOURS)
        return self.job_timeout

    @property
    def prefixes(self) -> dict[str, str]:
        """The S3 key prefixes in use, by prop name (they must differ)."""
        prefixes = {
            "result_prefix": self.result_prefix,
            "items_prefix": self.items_prefix,
            "output_prefix": self.output_prefix,
        }
        if self.input_prefix is not None:
            prefixes["input_prefix"] = self.input_prefix
        return prefixes

    # ----------------------------------------------------------------------------------------------
    # validation

    def validate(self) -> list[str]:
        """Every contradiction in the props, one plain sentence each (empty when they are valid)."""
        return [
            *self._batching_errors(),
            *self._map_errors(),
            *self._storage_errors(),
            *self._retry_errors(),
            *self._function_errors(),
        ]

    def _batching_errors(self) -> list[str]:
        errors = []
        if not _is_int(self.batch_size) or self.batch_size < 1:
            errors.append(f"batch_size must be an integer of at least 1, got {self.batch_size!r}")
        limit = self.max_input_bytes_per_batch
        if limit is not None:
            if not _is_int(limit) or not 1 <= limit <= MAX_BATCH_INPUT_BYTES:
                errors.append(
                    f"max_input_bytes_per_batch must be between 1 and {MAX_BATCH_INPUT_BYTES}, got {limit!r}"
                )
            elif self.batch_size == 1:
                errors.append(
                    "max_input_bytes_per_batch applies only to batches: set batch_size above 1, "
                    "got batch_size=1"
                )
        return errors

    def _map_errors(self) -> list[str]:
        errors = []
        concurrency = self.max_concurrency
        if not _is_int(concurrency) or not 1 <= concurrency <= MAX_DISTRIBUTED_CONCURRENCY:
            errors.append(
                f"max_concurrency must be between 1 and {MAX_DISTRIBUTED_CONCURRENCY}, got {concurrency!r}"
            )
        percentage = self.tolerated_failure_percentage
        if percentage is not None and not (_is_number(percentage) and 0 <= percentage <= 100):
            errors.append(f"tolerated_failure_percentage must be between 0 and 100, got {percentage!r}")
        count = self.tolerated_failure_count
        if count is not None and (not _is_int(count) or count < 0):
            errors.append(f"tolerated_failure_count must be an integer of at least 0, got {count!r}")
        if self.result_transformation not in RESULT_TRANSFORMATIONS:
            errors.append(
                "result_transformation must be Transformation.COMPACT or Transformation.NONE, got "
                f"{self.result_transformation!r}: "
                "FLATTEN merges a batch's results with results that are lists"
            )
        return errors

    def _storage_errors(self) -> list[str]:
        errors = []
        prefixes = self.prefixes
        for name, prefix in prefixes.items():
            if not isinstance(prefix, str) or not _PREFIX_PATTERN.match(prefix) or prefix.endswith("/"):
                errors.append(
                    f"{name} must be a non-empty S3 key prefix without a leading or trailing '/', "
                    f"got {prefix!r}"
                )
        if len(set(prefixes.values())) != len(prefixes):
            errors.append(
                f"result_prefix, items_prefix, output_prefix and input_prefix must differ, got {prefixes}"
            )
        if not _is_int(self.expire_after_days) or self.expire_after_days < 1:
            errors.append(
                f"expire_after_days must be an integer of at least 1, got {self.expire_after_days!r}"
            )
        return errors

    def _retry_errors(self) -> list[str]:
        errors = []
        if not _is_int(self.retry_attempts) or not 0 <= self.retry_attempts <= 99_999_999:
            errors.append(
                f"retry_attempts must be an integer between 0 and 99999999, got {self.retry_attempts!r}"
            )
        if not isinstance(self.retry_backoff_rate, int | float) or self.retry_backoff_rate < 1.0:
            errors.append(f"retry_backoff_rate must be at least 1.0, got {self.retry_backoff_rate!r}")
        interval_s = self.resolved_retry_interval.to_seconds(integral=False)
        max_delay_s = self.resolved_retry_max_delay.to_seconds(integral=False)
        if interval_s < 1:
            errors.append(f"retry_interval must be at least 1 second, got {interval_s} seconds")
        if max_delay_s < interval_s:
            errors.append(
                f"retry_max_delay must be at least retry_interval ({interval_s} seconds), "
                f"got {max_delay_s} seconds"
            )
        return errors

    def _function_errors(self) -> list[str]:
        errors = []
        if self.start_on_upload and self.input_prefix is None:
            errors.append(
                "start_on_upload needs input_prefix: set input_prefix to the prefix uploads land under"
            )
        if self.start_on_upload and self.bucket is not None and not isinstance(self.bucket, s3.Bucket):
            errors.append(
                "start_on_upload needs EventBridge notifications on the bucket, which BurstCompute can turn "
                "on only for an s3.Bucket defined in this app, not for an imported one: define the bucket "
                "here (s3.Bucket), or turn its EventBridge notifications on where it is managed and start "
                "jobs with your own EventBridge rule (Object Created under input_prefix, targeting "
                "job.state_machine)"
            )
        if self.input_prefix is not None and self.start is not None:
            errors.append(
                "Provide either start or input_prefix, but not both: input_prefix jobs have no start step"
            )
        reserved = self.compute_reserved_concurrency
        if reserved is not None:
            if not isinstance(self.compute, lambda_.Function):
                errors.append(
                    "compute_reserved_concurrency needs a compute Function defined in this app "
                    f"(aws_lambda.Function or PythonFunction), got {type(self.compute).__name__}: "
                    "set reserved concurrency where the function is defined"
                )
            if not _is_int(reserved) or reserved < 1:
                errors.append(
                    f"compute_reserved_concurrency must be an integer of at least 1, got {reserved!r}"
                )
        return errors


def prop_names() -> tuple[str, ...]:
    """Every prop's name, in declaration order."""
    return tuple(prop.name for prop in fields(BurstComputeProps))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
