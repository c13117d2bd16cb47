"""IAM for the job's data, from grants only: each principal gets the object actions it uses, on its
prefix only, plus the bucket key's use when the bucket has a customer-managed KMS key.

Key use, through the key's own grant methods (aws-cdk-lib grants none for an ItemReader or a
ResultWriter, aws-cdk #32144): whoever reads objects gets ``kms:Decrypt``; whoever writes them gets
``kms:GenerateDataKey*``, ``kms:Encrypt`` and ``kms:Decrypt``, the last because a multipart upload
(the start function's lists, the ResultWriter's result files) reads its encrypted parts back to
complete (guide, "IAM policies for using Distributed Map states": the ResultWriter needs
kms:Decrypt, kms:Encrypt and kms:GenerateDataKey). Listing objects needs no key.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from burstmap.cdk.definition import JobFunctions
from burstmap.cdk.props import BurstComputeProps


def grant_objects(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, actions: list[str]) -> iam.Grant:
    """``actions`` on ``<bucket>/<prefix>/*`` only, and the bucket key's use (encrypt too when writing)."""
    grant_key_use(grantee, bucket, writes="s3:PutObject" in actions)
    return iam.Grant.add_to_principal(
        grantee=grantee, actions=actions, resource_arns=[bucket.arn_for_objects(f"{prefix}/*")]
    )


def grant_key_use(grantee: iam.IGrantable, bucket: s3.IBucket, *, writes: bool) -> None:
    """The bucket key's use, when the bucket has one: decrypt to read, encrypt and decrypt to write."""
    key = bucket.encryption_key
    if key is None:
        return
    if writes:
        key.grant_encrypt_decrypt(grantee)
    else:
        key.grant_decrypt(grantee)


def grant_job_data_access(
    props: BurstComputeProps, bucket: s3.IBucket, state_machine: sfn.StateMachine, functions: JobFunctions
) -> None:
    """What start, the state machine, combine and (with ``input_prefix``) compute read and write."""
    # The ResultWriter's objects: aws-cdk-lib's statement (definition.py, on the result prefix) has no
    # key use, so a bucket with a KMS key would refuse the result files.
    grant_key_use(state_machine, bucket, writes=True)
    if functions.start is not None:
        # start writes large item lists (PutObject, multipart; it aborts an upload that failed) and
        # reads a user's list to count it (GetObject).
        grant_objects(
            functions.start,
            bucket,
            props.items_prefix,
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        )
        # Listing the items prefix (only) lets a missing list answer NoSuchKey instead of AccessDenied:
        # S3 decides between 404 and 403 by s3:ListBucket with the object's key as s3:prefix, and
        # runtime/start.py lists the key itself when S3 answers AccessDenied all the same.
        iam.Grant.add_to_principal(
            grantee=functions.start,
            actions=["s3:ListBucket"],
            resource_arns=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{props.items_prefix}/*"]}},
        )
        # The S3 ItemReaders take the bucket from the state ($.items_bucket), which aws-cdk-lib
        # cannot scope, so it grants nothing: the read grant is explicit.
        grant_objects(state_machine, bucket, props.items_prefix, ["s3:GetObject"])
        for source in props.item_source_buckets:
            source.grant_read(functions.start)
            source.grant_read(state_machine)
    # combine reads the manifest, then the result files it lists: no listing needed.
    grant_objects(functions.combine, bucket, props.result_prefix, ["s3:GetObject"])
    if props.input_prefix is not None:
        grant_objects(functions.compute, bucket, props.input_prefix, ["s3:GetObject"])
        grant_objects(functions.compute, bucket, props.output_prefix, ["s3:PutObject"])


def grant_watch_map_runs(grantee: iam.IGrantable, state_machine: sfn.StateMachine) -> list[iam.Grant]:
    """``ListMapRuns`` on the state machine's executions and ``DescribeMapRun`` on their map runs.

    ``StateMachine.grant_read`` has neither, yet progress comes from them (``burstmap status``). A map run
    ARN is ``arn:<partition>:states:<region>:<account>:mapRun:<state machine name>/<label>:<id>``.
    """
    map_runs = cdk.Stack.of(state_machine).format_arn(
        service="states",
        resource="mapRun",
        resource_name=f"{state_machine.state_machine_name}/*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    return [
        state_machine.grant_execution(grantee, "states:ListMapRuns"),
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["states:DescribeMapRun"], resource_arns=[map_runs]
        ),
    ]
