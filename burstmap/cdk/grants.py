"""IAM for the job's data, from grants only: each principal gets the object actions it uses, on its
prefix only (plus the bucket key's use when the bucket has one).
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
    if bucket.encryption_key is not None:
        if "s3:PutObject" in actions:
            bucket.encryption_key.grant_encrypt_decrypt(grantee)
        else:
            bucket.encryption_key.grant_decrypt(grantee)
    return iam.Grant.add_to_principal(
        grantee=grantee, actions=actions, resource_arns=[bucket.arn_for_objects(f"{prefix}/*")]
    )


def grant_job_data_access(
    props: BurstComputeProps, bucket: s3.IBucket, state_machine: sfn.StateMachine, functions: JobFunctions
) -> None:
    """What start, the state machine, combine and (with ``input_prefix``) compute read and write."""
    if functions.start is not None:
        # start writes large item lists (PutObject) and reads a user's list to count it (GetObject).
        grant_objects(functions.start, bucket, props.items_prefix, ["s3:GetObject", "s3:PutObject"])
        # Listing the items prefix (only) lets a missing list answer NoSuchKey instead of AccessDenied.
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
