"""BurstCompute: start -> Distributed Map of a compute Lambda -> combine, as one reusable CDK construct.

``BurstCompute(scope, id, compute=fn)`` is all a stack needs. Every prop, its default and its checks live
in :class:`burstmap.cdk.props.BurstComputeProps`; why the defaults are what they are is in the README
(Props, Batching, Retry defaults). This module wires the parts: resources.py (bucket, default functions,
upload rule), definition.py (the state machine), grants.py (data access), nag.py (accepted findings).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from burstmap.cdk.definition import RESULT_WRITER_V2_FLAG, JobFunctions, build_definition
from burstmap.cdk.grants import grant_job_data_access, grant_objects, grant_watch_map_runs
from burstmap.cdk.layer import BurstmapLayer
from burstmap.cdk.nag import acknowledge_nag_findings
from burstmap.cdk.props import BurstComputeProps, BurstComputeValidationError, prop_names
from burstmap.cdk.resources import (
    default_combine_function,
    default_start_function,
    job_bucket,
    send_events_to_event_bridge,
    state_machine_log_group,
    upload_rule,
)
from burstmap.runtime.contracts import ENV_BUCKET, ENV_ITEMS_PREFIX, ENV_RESULT_PREFIX, ENV_SUMMED_RESULTS

__all__ = ["BurstCompute", "BurstComputeValidationError", "RESERVED_CONCURRENCY_WARNING"]

RESERVED_CONCURRENCY_WARNING = "burstmap:computeReservedConcurrencyBelowMaxConcurrency"
"""The id of the synth warning about compute throttling (acknowledge it to silence it)."""


class BurstCompute(Construct):
    """Run ``compute`` over N items with a Step Functions Distributed Map, then combine the results.

    Keyword arguments: the fields of :class:`BurstComputeProps` (only ``compute`` is required).
    Attributes: ``state_machine``, ``bucket``, ``start_function`` (None with ``input_prefix``),
    ``compute_function``, ``combine_function``, ``runtime_layer``, ``log_group``, ``upload_rule`` (None
    without ``start_on_upload``), ``props``, and the resolved ``batch_size``, ``max_input_bytes_per_batch``,
    ``result_prefix``, ``items_prefix``, ``input_prefix``, ``output_prefix``, ``result_transformation``.
    """

    def __init__(self, scope: Construct, construct_id: str, **keywords: Any) -> None:
        # Every contradiction is reported before anything is added to the tree.
        self.props = props = _checked_props(keywords)
        super().__init__(scope, construct_id)
        # The flag must be set before any child exists: FeatureFlags reads it from the DistributedMap's scope.
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)
        self.batch_size = props.batch_size
        self.result_prefix = props.result_prefix
        self.items_prefix = props.items_prefix
        self.input_prefix = props.input_prefix
        self.output_prefix = props.output_prefix
        self.result_transformation = props.result_transformation
        #: ItemBatcher ``MaxInputBytesPerBatch``; None without batching.
        self.max_input_bytes_per_batch = props.resolved_max_input_bytes_per_batch

        self.bucket: s3.IBucket = props.bucket if props.bucket is not None else job_bucket(self, props)
        self.runtime_layer: BurstmapLayer = BurstmapLayer.of(self)
        self.compute_function: lambda_.IFunction = props.compute
        self.start_function: lambda_.IFunction | None = None
        if props.input_prefix is None:
            self.start_function = props.start or default_start_function(self, props, self.runtime_layer)
            self._tell_where_the_objects_are(self.start_function)
        self.combine_function: lambda_.IFunction = props.combine or default_combine_function(
            self, props, self.runtime_layer
        )
        self._tell_where_the_objects_are(self.combine_function)
        if props.combine is None and isinstance(props.compute, lambda_.Function):  # refuse unsummable results
            props.compute.add_environment(ENV_SUMMED_RESULTS, "1")
        if props.compute_reserved_concurrency is not None:
            cfn_function = props.compute.node.default_child  # a Function: checked by validate()
            assert isinstance(cfn_function, lambda_.CfnFunction)
            cfn_function.reserved_concurrent_executions = props.compute_reserved_concurrency
            self._warn_of_throttling(props)

        functions = JobFunctions(self.start_function, self.compute_function, self.combine_function)
        self.log_group: logs.ILogGroup = props.log_group or state_machine_log_group(self, props)
        definition = build_definition(self, props, self.bucket, functions)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=props.resolved_job_timeout,
            tracing_enabled=props.tracing,
            state_machine_name=props.state_machine_name,
            logs=sfn.LogOptions(
                destination=self.log_group, level=props.log_level, include_execution_data=False
            ),
        )
        grant_job_data_access(props, self.bucket, self.state_machine, functions)
        self.upload_rule: events.Rule | None = None
        if props.start_on_upload:
            assert props.input_prefix is not None  # checked by validate()
            if props.bucket is not None:
                assert isinstance(props.bucket, s3.Bucket)  # an imported bucket: refused by validate()
                send_events_to_event_bridge(props.bucket)
            self.upload_rule = upload_rule(self, props.input_prefix, self.bucket, self.state_machine)
        acknowledge_nag_findings(self, props, self.bucket, self.state_machine, functions)

    # ----------------------------------------------------------------------------------------------
    # grants
    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start jobs (``states:StartExecution`` on this state machine)."""
        return self.state_machine.grant_start_execution(grantee)

    def grant_read_results(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the manifests and result files under the result prefix."""
        return self.bucket.grant_read(grantee, f"{self.result_prefix}/*")

    def grant_stage_items(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` upload item lists under the items prefix (``s3:PutObject``, and the bucket
        key's use): what ``burstmap run`` does with a list too large for the execution input."""
        return grant_objects(grantee, self.bucket, self.items_prefix, ["s3:PutObject"])

    def grant_run(self, grantee: iam.IGrantable) -> list[iam.Grant]:
        """What ``burstmap run --stack`` needs: start, stage large item lists (not with input_prefix),
        watch (executions, map runs), stop, redrive, read the results."""
        staging = [self.grant_stage_items(grantee)] if self.start_function is not None else []
        return [
            self.grant_start_execution(grantee),
            *staging,
            self.state_machine.grant_read(grantee),
            *grant_watch_map_runs(grantee, self.state_machine),
            self.state_machine.grant_redrive_execution(grantee),
            self.state_machine.grant_execution(grantee, "states:StopExecution"),
            self.grant_read_results(grantee),
        ]

    def _warn_of_throttling(self, props: BurstComputeProps) -> None:
        """A synth warning when compute's reserved concurrency is below the children run at once.

        A warning, not a refusal: capping compute below max_concurrency is a legitimate way to
        protect what compute calls or to bound spend, and the throttling retrier keeps the job
        going; but on AWS it shows only as Lambda.TooManyRequestsException retries (slower jobs,
        more state transitions), so the synth output says it.
        """
        reserved = props.compute_reserved_concurrency
        assert reserved is not None
        if reserved < props.max_concurrency:
            cdk.Annotations.of(self).add_warning_v2(
                RESERVED_CONCURRENCY_WARNING,
                f"compute_reserved_concurrency ({reserved}) is below max_concurrency "
                f"({props.max_concurrency}): at most {reserved} of the {props.max_concurrency} child "
                "executions that run at once can run compute; the others are throttled "
                "(Lambda.TooManyRequestsException) and retried (retry_attempts, with backoff), which "
                f"slows the job and adds state transitions. Set max_concurrency={reserved} to run no "
                "more children than compute can serve, or raise compute_reserved_concurrency.",
            )

    def _tell_where_the_objects_are(self, function: lambda_.IFunction) -> None:
        """The job's bucket and prefixes in a function's environment (imported functions cannot change)."""
        if isinstance(function, lambda_.Function):
            function.add_environment(ENV_BUCKET, self.bucket.bucket_name)
            function.add_environment(ENV_RESULT_PREFIX, self.result_prefix)
            function.add_environment(ENV_ITEMS_PREFIX, self.items_prefix)


def _checked_props(keywords: Mapping[str, Any]) -> BurstComputeProps:
    """The props from BurstCompute's keyword arguments: TypeError for an unknown or missing one,
    BurstComputeValidationError with every contradiction at once."""
    names = prop_names()
    for name in keywords:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ": see BurstComputeProps for the props"
            raise TypeError(f"BurstCompute() got an unexpected keyword argument {name!r}{hint}")
    if "compute" not in keywords:
        raise TypeError(
            "BurstCompute() missing the required keyword argument 'compute' (the function run for each item)"
        )
    props = BurstComputeProps(**keywords)
    errors = props.validate()
    if errors:
        raise BurstComputeValidationError("; ".join(errors))
    return props


def _signature() -> inspect.Signature:
    """``(self, scope, construct_id, *, <every prop with its default>)``, for help() and IDEs."""
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [
        inspect.Parameter("self", positional),
        inspect.Parameter("scope", positional, annotation=Construct),
        inspect.Parameter("construct_id", positional, annotation=str),
    ]
    for prop in fields(BurstComputeProps):
        default = inspect.Parameter.empty if prop.default is MISSING else prop.default
        parameters.append(
            inspect.Parameter(
                prop.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=prop.type
            )
        )
    return inspect.Signature(parameters, return_annotation=None)


BurstCompute.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
