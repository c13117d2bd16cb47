"""The job's state machine definition: Start -> ItemSource (Choice) -> one Distributed Map per item
source -> Combine; with ``input_prefix``: Prepare -> a Distributed Map over the objects -> Combine.

Each Distributed Map runs the compute task with the construct's retriers, batches with an ItemBatcher
when ``batch_size`` > 1, and writes its results with a ResultWriter under the result prefix. The states
are created under the construct (their ids name the states in the definition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from burstmap.cdk.props import BurstComputeProps
from burstmap.runtime.contracts import (
    COMBINE_BATCHED_FIELD,
    JOB_PARAMETERS_PATH,
    MAP_ITEM_VALUE,
    compute_batch_input,
    compute_item_selector,
)

#: Feature flag without which aws-cdk-lib silently drops ``result_writer_v2`` (and with it every result).
RESULT_WRITER_V2_FLAG = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"

THROTTLING_ERRORS = ("Lambda.TooManyRequestsException",)
TRANSIENT_LAMBDA_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
#: The transient-error retrier: aws-cdk-lib's LambdaInvoke default (2 s, backoff 2, 6 attempts), jittered.
TRANSIENT_RETRY_INTERVAL_SECONDS = 2
TRANSIENT_RETRY_BACKOFF_RATE = 2.0
TRANSIENT_RETRY_ATTEMPTS = 6

#: The start output's ``items_format`` -> the ItemReader that reads such a list.
ITEM_FORMAT_READERS: dict[str, Any] = {
    "JSONL": sfn.S3JsonLItemReader,
    "CSV": sfn.S3CsvItemReader,
    "JSON": sfn.S3JsonItemReader,
}


@dataclass(frozen=True)
class JobFunctions:
    """The functions the definition invokes (``start`` is None with ``input_prefix``)."""

    start: lambda_.IFunction | None
    compute: lambda_.IFunction
    combine: lambda_.IFunction


def build_definition(
    scope: Construct, props: BurstComputeProps, bucket: s3.IBucket, functions: JobFunctions
) -> sfn.IChainable:
    """The definition's states, created under ``scope``."""
    builder = _DefinitionBuilder(scope, props, bucket, functions)
    return builder.objects_job() if props.input_prefix is not None else builder.items_job()


class _PrefixScopedResultWriter(sfn.ResultWriterV2):
    """ResultWriterV2 whose IAM statement covers only ``<bucket>/<prefix>/*``, not the whole bucket.

    aws-cdk-lib grants the ResultWriter ``s3:PutObject`` and friends on ``<bucket>/*``; the state machine
    needs them only under the result prefix.
    """

    def __init__(self, *, bucket: s3.IBucket, prefix: str, writer_config: sfn.WriterConfig) -> None:
        super().__init__(bucket=bucket, prefix=prefix, writer_config=writer_config)
        self._scoped_bucket = bucket
        self._scoped_prefix = prefix

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        """The same actions aws-cdk-lib grants, on the result prefix only."""
        return [
            iam.PolicyStatement(
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[self._scoped_bucket.arn_for_objects(f"{self._scoped_prefix}/*")],
            )
        ]


class _ZeroSafeDistributedMap(sfn.DistributedMap):
    """DistributedMap that renders an explicit ``0`` tolerance.

    aws-cdk-lib 2.275 renders ``ToleratedFailureCount`` / ``ToleratedFailurePercentage`` only when truthy,
    so a deliberate 0 silently disappears from the definition.
    """

    def __init__(self, scope: Construct, construct_id: str, **props: Any) -> None:
        super().__init__(scope, construct_id, **props)
        self._explicit_tolerance = {
            "ToleratedFailureCount": props.get("tolerated_failure_count"),
            "ToleratedFailurePercentage": props.get("tolerated_failure_percentage"),
        }

    def to_state_json(self, state_machine_query_language: sfn.QueryLanguage | None = None) -> dict[str, Any]:
        """aws-cdk-lib's rendering, plus the tolerance fields it dropped because they were 0."""
        rendered = dict(super().to_state_json(state_machine_query_language))
        for field, value in self._explicit_tolerance.items():
            if value is not None:
                rendered[field] = value
        return rendered


class _DefinitionBuilder:
    def __init__(
        self, scope: Construct, props: BurstComputeProps, bucket: s3.IBucket, functions: JobFunctions
    ) -> None:
        self._scope = scope
        self._props = props
        self._bucket = bucket
        self._functions = functions

    def items_job(self) -> sfn.IChainable:
        """Start -> Choice on ``$.source`` -> one Distributed Map per item source -> Combine."""
        assert self._functions.start is not None
        start = self._lambda_task(
            "Start", self._functions.start, payload=sfn.TaskInput.from_json_path_at("$")
        )
        combine = self._combine_task(with_count=True)
        payload_map = self._distributed_map("MapPayloadItems", items_path="$.items")
        choice = sfn.Choice(self._scope, "ItemSource").when(
            sfn.Condition.string_equals("$.source", "payload"), payload_map.next(combine)
        )
        for item_format, reader_class in ITEM_FORMAT_READERS.items():
            reader = reader_class(
                bucket_name_path=sfn.JsonPath.string_at("$.items_bucket"),
                key=sfn.JsonPath.string_at("$.items_key"),
            )
            s3_map = self._distributed_map(f"MapS3{item_format.capitalize()}Items", item_reader=reader)
            choice.when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.source", "s3"),
                    sfn.Condition.string_equals("$.items_format", item_format),
                ),
                s3_map.next(combine),
            )
        choice.otherwise(
            sfn.Fail(
                self._scope,
                "UnknownItemSource",
                error="InvalidInput",
                cause="The start function returned an unknown item source: expected source 'payload', "
                "or 's3' with items_format JSONL, CSV or JSON.",
            )
        )
        return start.next(choice)

    def objects_job(self) -> sfn.IChainable:
        """Items = the objects under the input prefix: Prepare (default parameters) -> Map -> Combine."""
        props = self._props
        prepare = sfn.Pass(
            self._scope,
            "Prepare",
            comment="Default the job parameters to {}: an empty input or an EventBridge event starts a job.",
            parameters={
                "job.$": "States.JsonMerge(States.StringToJson('{\"parameters\": {}}'), $, false)",
            },
            output_path="$.job",
        )
        reader = sfn.S3ObjectsItemReader(bucket=self._bucket, prefix=f"{props.input_prefix}/")
        objects_map = self._distributed_map(
            "MapS3Objects",
            item_reader=reader,
            item={
                "bucket": self._bucket.bucket_name,
                "key.$": "$$.Map.Item.Value.Key",
                "output_prefix": f"{props.output_prefix}/",
            },
        )
        return prepare.next(objects_map).next(self._combine_task(with_count=False))

    def _combine_task(self, *, with_count: bool) -> tasks.LambdaInvoke:
        """The combine step: its Payload is the execution's output.

        ``batched`` tells the combiner how to read a COMPACT record: a batch's list of results, or one
        item's output (which may itself be a list).
        """
        payload: dict[str, Any] = {
            "results": sfn.JsonPath.object_at("$.results"),
            "parameters": sfn.JsonPath.object_at(JOB_PARAMETERS_PATH),
            COMBINE_BATCHED_FIELD: self._props.batched,
        }
        if with_count:
            payload["count"] = sfn.JsonPath.number_at("$.count")
        return self._lambda_task(
            "Combine", self._functions.combine, payload=sfn.TaskInput.from_object(payload)
        )

    def _distributed_map(
        self,
        construct_id: str,
        *,
        items_path: str | None = None,
        item_reader: sfn.IItemReader | None = None,
        item: Any = MAP_ITEM_VALUE,
    ) -> sfn.DistributedMap:
        """One Distributed Map of the compute task; every item source shares this shape (contracts.py
        holds it: ``burstmap run --batch-size`` rewrites a synthesized definition to the same shape)."""
        props = self._props
        item_field: dict[str, Any] = {"item.$": item} if isinstance(item, str) else {"item": item}
        selector = compute_item_selector(item_field, batched=props.batched)
        batcher = None
        if props.batched:
            # Batched children get {"Items": [...], "BatchInput": {...}}: the parameters go once per batch.
            batcher = sfn.ItemBatcher(
                max_items_per_batch=props.batch_size,
                max_input_bytes_per_batch=props.resolved_max_input_bytes_per_batch,
                batch_input=compute_batch_input(),
            )
        distributed_map = _ZeroSafeDistributedMap(
            self._scope,
            construct_id,
            items_path=items_path,
            item_reader=item_reader,
            item_selector=selector,
            item_batcher=batcher,
            max_concurrency=props.max_concurrency,
            tolerated_failure_percentage=props.tolerated_failure_percentage,
            tolerated_failure_count=props.tolerated_failure_count,
            result_writer_v2=_PrefixScopedResultWriter(
                bucket=self._bucket,
                prefix=props.result_prefix,
                writer_config=sfn.WriterConfig(
                    output_type=sfn.OutputType.JSON, transformation=props.result_transformation
                ),
            ),
            result_path="$.results",
        )
        compute_id = construct_id.replace("Map", "Compute", 1)
        distributed_map.item_processor(self._lambda_task(compute_id, self._functions.compute))
        return distributed_map

    def _lambda_task(
        self, construct_id: str, function: lambda_.IFunction, *, payload: sfn.TaskInput | None = None
    ) -> tasks.LambdaInvoke:
        """A LambdaInvoke that keeps only the Payload and retries as :meth:`_add_retries` says."""
        task = tasks.LambdaInvoke(
            self._scope,
            construct_id,
            lambda_function=function,
            payload=payload,
            output_path="$.Payload",
            retry_on_service_exceptions=False,
        )
        self._add_retries(task)
        return task

    def _add_retries(self, task: tasks.LambdaInvoke) -> None:
        """Throttling first (every function shares the account's concurrency), then transient errors.

        aws-cdk-lib's own service-error retrier is off (``retry_on_service_exceptions=False``): the
        transient retrier here replaces it, jittered and capped, after the throttling one.
        """
        props = self._props
        max_delay = props.resolved_retry_max_delay
        task.add_retry(
            errors=list(THROTTLING_ERRORS),
            interval=props.resolved_retry_interval,
            backoff_rate=props.retry_backoff_rate,
            max_attempts=props.retry_attempts,
            max_delay=max_delay,
            jitter_strategy=sfn.JitterType.FULL,
        )
        task.add_retry(
            errors=list(TRANSIENT_LAMBDA_ERRORS),
            interval=cdk.Duration.seconds(TRANSIENT_RETRY_INTERVAL_SECONDS),
            backoff_rate=TRANSIENT_RETRY_BACKOFF_RATE,
            max_attempts=TRANSIENT_RETRY_ATTEMPTS,
            max_delay=max_delay,
            jitter_strategy=sfn.JitterType.FULL,
        )
