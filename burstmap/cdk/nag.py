"""The cdk-nag AwsSolutions findings BurstCompute accepts by design, each with the finding id and why.

IAM5 ids name the exact wildcard (cdk-nag 3 has no prefix matching), so they are built from the
resources' logical ids: anything new that the construct did not expect still fails the check.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from burstmap.cdk.definition import JobFunctions
from burstmap.cdk.props import BurstComputeProps


def acknowledge_nag_findings(
    job: Construct,
    props: BurstComputeProps,
    bucket: s3.IBucket,
    state_machine: sfn.StateMachine,
    functions: JobFunctions,
) -> None:
    """Acknowledge, on the resource each concerns, the findings the job's design implies."""
    _Acknowledger(job, props, bucket, state_machine, functions).acknowledge_all()


def _acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions-{finding}", reason=reason))


def _nag_render(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag spells it in finding ids (``<Logical.Arn>``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return f"<{argument}>"
        if key == "Fn::GetAtt":
            return f"<{'.'.join(argument)}>"
        if key == "Fn::Join":
            separator, parts = argument
            return separator.join(_nag_render(part) for part in parts)
    return json.dumps(value, separators=(",", ":"))


class _Acknowledger:
    def __init__(
        self,
        job: Construct,
        props: BurstComputeProps,
        bucket: s3.IBucket,
        state_machine: sfn.StateMachine,
        functions: JobFunctions,
    ) -> None:
        self._job = job
        self._props = props
        self._bucket = bucket
        self._state_machine = state_machine
        self._functions = functions
        self._stack = cdk.Stack.of(job)

    def acknowledge_all(self) -> None:
        self._bucket_and_state_machine()
        policy = self._state_machine.role.node.find_child("DefaultPolicy")
        self._state_machine_policy(policy)
        self._distributed_map_policy()
        self._compute_role()
        self._own_functions()
        self._bucket_key_use(policy)

    def _text(self, value: Any) -> str:
        return _nag_render(self._stack.resolve(value))

    def _prefix_arn(self, prefix: str) -> str:
        return f"{self._text(self._bucket.bucket_arn)}/{prefix}/*"

    def _bucket_and_state_machine(self) -> None:
        props = self._props
        if props.bucket is None:
            _acknowledge(
                self._bucket,
                "S1",
                "The job bucket holds scratch objects (item lists, result files) that expire after "
                "expire_after_days; server access logs would need a second bucket. Pass bucket= to use one "
                "with access logging.",
            )
        if props.log_level != sfn.LogLevel.ALL:
            _acknowledge(
                self._state_machine,
                "SF1",
                "Logging ALL events writes several log events per item of a Distributed Map (millions per "
                "large job); the default ERROR level logs every failure. "
                "Set log_level=LogLevel.ALL to debug.",
            )
        if not props.tracing:
            _acknowledge(
                self._state_machine,
                "SF2",
                "X-Ray tracing is opt-in (tracing=True): a trace per child execution costs more than the "
                "compute of a small item.",
            )

    def _state_machine_policy(self, policy: IConstruct) -> None:
        props, functions = self._props, self._functions
        _acknowledge(
            policy,
            "IAM5[Resource::*]",
            "aws-cdk-lib's log delivery statement for the state machine (logs:CreateLogDelivery and friends) "
            "does not support resource-level permissions.",
        )
        invoked = [functions.compute, functions.combine]
        if functions.start is not None:
            invoked.append(functions.start)
        for function in invoked:
            _acknowledge(
                policy,
                f"IAM5[Resource::{self._text(function.function_arn)}:*]",
                "LambdaInvoke grants the function and its versions and aliases (<arn>:*) for qualified ARNs.",
            )
        prefixes = (
            {props.items_prefix, props.result_prefix}
            if functions.start is not None
            else {props.result_prefix}
        )
        for prefix in prefixes:
            _acknowledge(
                policy,
                f"IAM5[Resource::{self._prefix_arn(prefix)}]",
                f"The state machine reads and writes job objects under {prefix}/ only: the key names are "
                "generated per job (map run ids, item lists): the prefix is the narrowest scope.",
            )

    def _distributed_map_policy(self) -> None:
        name = json.dumps(
            self._stack.resolve(cdk.Fn.select(6, cdk.Fn.split(":", self._state_machine.state_machine_arn))),
            separators=(",", ":"),
        )
        execution = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}"
        map_policy = self._state_machine.node.find_child("DistributedMapPolicy")
        for resource in (f"{execution}:*", f"{execution}/*:*"):
            _acknowledge(
                map_policy,
                f"IAM5[Resource::{resource}]",
                "aws-cdk-lib's Distributed Map policy: the state machine describes, stops and redrives its "
                "own child executions, whose names are generated at run time.",
            )

    def _compute_role(self) -> None:
        props, compute = self._props, self._functions.compute
        if props.input_prefix is None or compute.role is None:
            return
        for prefix in (props.input_prefix, props.output_prefix):
            _acknowledge(
                compute.role,
                f"IAM5[Resource::{self._prefix_arn(prefix)}]",
                f"input_prefix mode: compute reads objects under {props.input_prefix}/, writes under "
                f"{props.output_prefix}/; the prefix is the narrowest scope for keys users choose.",
            )

    def _own_functions(self) -> None:
        """The default start and combine functions, when the construct created them."""
        props, functions = self._props, self._functions
        for function, prefix in (
            (functions.start, props.items_prefix),
            (functions.combine, props.result_prefix),
        ):
            if not (isinstance(function, lambda_.Function) and function.node.scope is self._job):
                continue
            _acknowledge(
                function,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "The AWS managed basic execution role only lets the function write its own CloudWatch logs.",
            )
            _acknowledge(
                function,
                "L1",
                "Python 3.13 is chosen deliberately (runtime= to change): the newest runtime this project's "
                "handlers are tested on; 3.14 follows once the test matrix covers it.",
            )
            _acknowledge(
                function,
                f"IAM5[Resource::{self._prefix_arn(prefix)}]",
                f"The function reads or writes job objects under {prefix}/ only; their keys are "
                "generated per job, so the prefix is the narrowest scope.",
            )

    def _bucket_key_use(self, state_machine_policy: IConstruct) -> None:
        """With a KMS-encrypted bucket: the key's use by those that write job objects (grants.py)."""
        if self._bucket.encryption_key is None:
            return
        props, functions = self._props, self._functions
        writers: list[IConstruct] = [state_machine_policy]
        start = functions.start
        if isinstance(start, lambda_.Function) and start.node.scope is self._job:
            writers.append(start)
        if props.input_prefix is not None and functions.compute.role is not None:
            writers.append(functions.compute.role)
        for writer in writers:
            for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
                _acknowledge(
                    writer,
                    f"IAM5[Action::{action}]",
                    "Key.grant_encrypt_decrypt on the job bucket's KMS key only: writing SSE-KMS objects "
                    "takes GenerateDataKey (GenerateDataKey* also names GenerateDataKeyWithoutPlaintext) "
                    "and the grant's ReEncrypt* pair; the resource is that one key.",
                )
