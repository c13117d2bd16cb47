"""BurstCompute's grants on a bucket encrypted with a customer-managed KMS key: every principal that
reads job objects may decrypt with the key, every one that writes them may generate data keys
(aws-cdk #32144: aws-cdk-lib grants no key use for an ItemReader or a ResultWriter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_support import (
    actions_of,
    fast_app,
    inline_function,
    logical_id,
    resources_of,
    role_of,
    statements_of,
    template_of,
)

from burstmap.cdk.construct import BurstCompute

DIST_MAP_IAM_PAGE = "https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html"
WRITE_KEY = {"kms:GenerateDataKey*", "kms:Encrypt", "kms:Decrypt"}
READ_KEY = {"kms:Decrypt"}


@dataclass
class KmsJob:
    stack: cdk.Stack
    job: BurstCompute
    key: kms.Key
    template: dict[str, Any]
    caller: iam.Role

    def key_actions(self, role_logical_id: str) -> set[str]:
        """The kms: actions the role may perform on the bucket's key (and only on it)."""
        key_arn = {"Fn::GetAtt": [logical_id(self.stack, self.key), "Arn"]}
        found = set()
        for statement in statements_of(self.template, role_logical_id):
            actions = [a for a in actions_of(statement) if a.startswith("kms:")]
            if actions:
                assert resources_of(statement) == [key_arn], statement
                found.update(actions)
        return found


def _kms_job(**props: Any) -> KmsJob:
    stack = cdk.Stack(fast_app(), "Kms")
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Data", encryption=s3.BucketEncryption.KMS, encryption_key=key)
    job = BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"), bucket=bucket, **props)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    job.grant_run(caller)
    return KmsJob(stack, job, key, template_of(stack), caller)


def test_items_job_on_a_kms_bucket_grants_the_key_to_every_reader_and_writer() -> None:
    """Guide, "IAM policies for using Distributed Map states" (iam-policies-eg-dist-map.html): the
    ResultWriter's multipart uploads need kms:Decrypt, kms:Encrypt and kms:GenerateDataKey on the
    bucket's key; the item readers need kms:Decrypt."""
    kms_job = _kms_job()
    job, stack = kms_job.job, kms_job.stack
    assert job.start_function is not None
    # the state machine reads the item lists and writes the result files
    assert kms_job.key_actions(logical_id(stack, job.state_machine.role)) >= WRITE_KEY
    # start writes and reads the item lists; combine reads the results
    assert kms_job.key_actions(role_of(stack, job.start_function)) >= WRITE_KEY
    assert kms_job.key_actions(role_of(stack, job.combine_function)) == READ_KEY
    # the CLI's role stages item lists (put) and reads results
    caller = kms_job.key_actions(logical_id(stack, kms_job.caller))
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= caller


def test_objects_job_on_a_kms_bucket_grants_the_key_to_the_result_writer_and_compute() -> None:
    """iam-policies-eg-dist-map.html: with input_prefix the state machine only lists the input (no
    key use for that) but still writes result files; compute reads input and writes output."""
    kms_job = _kms_job(input_prefix="input")
    job, stack = kms_job.job, kms_job.stack
    assert kms_job.key_actions(logical_id(stack, job.state_machine.role)) >= WRITE_KEY
    assert kms_job.key_actions(role_of(stack, job.compute_function)) >= WRITE_KEY
    assert kms_job.key_actions(role_of(stack, job.combine_function)) == READ_KEY
    assert kms_job.key_actions(logical_id(stack, kms_job.caller)) == {"kms:Decrypt", "kms:DescribeKey"}


def test_s3_managed_encryption_grants_no_key_use() -> None:
    stack = cdk.Stack(fast_app(), "Plain")
    job = BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"))
    template = template_of(stack)
    roles = [logical_id(stack, job.state_machine.role), role_of(stack, job.combine_function)]
    assert not [
        a for r in roles for s in statements_of(template, r) for a in actions_of(s) if a.startswith("kms:")
    ]


@pytest.mark.parametrize("input_prefix", [None, "input"])
def test_grant_run_stages_item_lists_only_where_there_is_a_start_step(input_prefix: str | None) -> None:
    """The CLI uploads an item list too large for the execution input under the items prefix
    (client/job_input.py stage_items); grant_run lets it, and only for jobs that have a start step."""
    stack = cdk.Stack(fast_app(), "Run")
    job = BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"), input_prefix=input_prefix)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    job.grant_run(caller)
    statements = statements_of(template_of(stack), logical_id(stack, caller))
    puts = [s for s in statements if "s3:PutObject" in actions_of(s)]
    bucket_arn = {"Fn::GetAtt": [logical_id(stack, job.bucket), "Arn"]}
    if input_prefix is None:
        (put,) = puts
        assert actions_of(put) == ["s3:PutObject"]
        assert resources_of(put) == [{"Fn::Join": ["", [bucket_arn, "/items/*"]]}]
    else:
        assert puts == []
