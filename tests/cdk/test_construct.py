"""BurstCompute: the synthesized state machine (as parsed ASL), IAM, bucket, functions, validation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from cdk_support import (
    actions_of,
    fast_app,
    inline_function,
    logical_id,
    only_state_machine,
    resources_of,
    role_of,
    statements_of,
    template_of,
)

from burstmap.cdk.construct import BurstCompute
from burstmap.cdk.definition import RESULT_WRITER_V2_FLAG
from burstmap.cdk.props import DEFAULT_BATCH_SIZE, DEFAULT_RETRY_ATTEMPTS, BurstComputeValidationError
from burstmap.runtime.contracts import (
    BATCH_ENVELOPE_BYTES,
    DEFAULT_MAX_INPUT_BYTES_PER_BATCH,
    ENV_SUMMED_RESULTS,
    PARAMETERS_MAX_BYTES,
    STATE_PAYLOAD_LIMIT_BYTES,
    json_size,
)

THROTTLE_RETRY = {
    "ErrorEquals": ["Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1,
    "MaxAttempts": 13,
    "BackoffRate": 2,
    "MaxDelaySeconds": 30,
    "JitterStrategy": "FULL",
}
TRANSIENT_RETRY = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "MaxDelaySeconds": 30,
    "JitterStrategy": "FULL",
}
ONE_ITEM_SELECTOR = {
    "item.$": "$$.Map.Item.Value",
    "index.$": "$$.Map.Item.Index",
    "parameters.$": "$.parameters",
}
BATCH_ITEM_SELECTOR = {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}
S3_MAPS = {"MapS3JsonlItems": "JSONL", "MapS3CsvItems": "CSV", "MapS3JsonItems": "JSON"}


@dataclass
class Synth:
    stack: cdk.Stack
    job: BurstCompute
    compute: lambda_.Function
    template: dict[str, Any]
    asl: dict[str, Any]

    def ref(self, construct: Any) -> str:
        return logical_id(self.stack, construct)


@pytest.fixture(scope="module")
def synths() -> dict[str, Synth]:
    """One app (no cdk.json, no feature flags), three stacks, synthesized once for the module."""
    app = fast_app()
    built: dict[str, tuple[cdk.Stack, BurstCompute, lambda_.Function]] = {}

    stack = cdk.Stack(app, "Default")
    compute = inline_function(stack, "Compute")
    built["default"] = (stack, BurstCompute(stack, "Job", compute=compute), compute)

    stack = cdk.Stack(app, "Unbatched")
    compute = inline_function(stack, "Compute")
    job = BurstCompute(
        stack, "Job", compute=compute, batch_size=1, result_transformation=sfn.Transformation.NONE
    )
    built["unbatched"] = (stack, job, compute)

    stack = cdk.Stack(app, "Batched")
    compute = inline_function(stack, "Compute")
    job = BurstCompute(
        stack,
        "Job",
        compute=compute,
        batch_size=10,
        max_input_bytes_per_batch=65_536,
        max_concurrency=50,
        tolerated_failure_count=0,
        tolerated_failure_percentage=0,
        retry_attempts=5,
        retry_interval=cdk.Duration.seconds(2),
        retry_backoff_rate=3,
        retry_max_delay=cdk.Duration.seconds(90),
        job_timeout=cdk.Duration.hours(2),
        log_level=sfn.LogLevel.ALL,
        tracing=True,
        state_machine_name="burst-batched",
        result_prefix="out/results",
        items_prefix="out/items",
        expire_after_days=3,
    )
    built["batched"] = (stack, job, compute)

    stack = cdk.Stack(app, "Objects")
    compute = inline_function(stack, "Compute")
    job = BurstCompute(
        stack,
        "Job",
        compute=compute,
        input_prefix="input",
        output_prefix="output",
        start_on_upload=True,
        compute_reserved_concurrency=100,
    )
    built["objects"] = (stack, job, compute)

    result = {}
    for name, (stack, job, compute) in built.items():
        template = template_of(stack)
        result[name] = Synth(stack, job, compute, template, only_state_machine(template))
    return result


# -------------------------------------------------------------------------------------------------
# the state machine
def test_start_task_passes_the_execution_input_and_keeps_only_the_payload(synths: dict[str, Synth]) -> None:
    synth = synths["default"]
    asl = synth.asl
    assert asl["StartAt"] == "Start"
    start = asl["States"]["Start"]
    assert start["Resource"] == "arn:${Ref:AWS::Partition}:states:::lambda:invoke"
    assert start["Parameters"] == {
        "FunctionName": "${GetAtt:" + synth.ref(synth.job.start_function) + ".Arn}",
        "Payload.$": "$",
    }
    assert start["OutputPath"] == "$.Payload"
    assert start["Next"] == "ItemSource"
    assert start["Retry"] == [THROTTLE_RETRY, TRANSIENT_RETRY]


def test_choice_routes_each_item_source_to_its_own_distributed_map(synths: dict[str, Synth]) -> None:
    choice = synths["default"].asl["States"]["ItemSource"]
    assert choice["Type"] == "Choice"
    assert choice["Choices"][0] == {
        "Variable": "$.source",
        "StringEquals": "payload",
        "Next": "MapPayloadItems",
    }
    for rule, (state, item_format) in zip(choice["Choices"][1:], S3_MAPS.items(), strict=True):
        assert rule == {
            "And": [
                {"Variable": "$.source", "StringEquals": "s3"},
                {"Variable": "$.items_format", "StringEquals": item_format},
            ],
            "Next": state,
        }
    assert choice["Default"] == "UnknownItemSource"
    assert synths["default"].asl["States"]["UnknownItemSource"]["Error"] == "InvalidInput"


def test_payload_map_reads_items_from_the_state_and_selects_item_index_parameters(
    synths: dict[str, Synth],
) -> None:
    state = synths["unbatched"].asl["States"]["MapPayloadItems"]
    assert state["Type"] == "Map"
    assert state["ItemsPath"] == "$.items"
    assert "ItemReader" not in state
    assert state["ItemSelector"] == ONE_ITEM_SELECTOR
    assert "ItemBatcher" not in state
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert state["MaxConcurrency"] == 900
    assert state["ResultPath"] == "$.results"
    assert state["Next"] == "Combine"
    assert "ToleratedFailurePercentage" not in state
    assert "ToleratedFailureCount" not in state


@pytest.mark.parametrize(("state_name", "item_format"), S3_MAPS.items())
def test_s3_maps_read_the_list_named_by_the_start_output(
    synths: dict[str, Synth], state_name: str, item_format: str
) -> None:
    state = synths["default"].asl["States"][state_name]
    reader = state["ItemReader"]
    assert reader["Resource"] == "arn:${Ref:AWS::Partition}:states:::s3:getObject"
    assert reader["Parameters"] == {"Bucket.$": "$.items_bucket", "Key.$": "$.items_key"}
    assert reader["ReaderConfig"]["InputType"] == item_format
    if item_format == "CSV":
        assert reader["ReaderConfig"]["CSVHeaderLocation"] == "FIRST_ROW"
    assert "ItemsPath" not in state
    assert state["ItemSelector"] == BATCH_ITEM_SELECTOR
    assert state["ResultPath"] == "$.results"
    assert state["Next"] == "Combine"


@pytest.mark.parametrize("state_name", ["MapPayloadItems", *S3_MAPS])
@pytest.mark.parametrize(("synth_name", "transformation"), [("default", "COMPACT"), ("unbatched", "NONE")])
def test_every_map_writes_its_results_to_the_bucket_prefix(
    synths: dict[str, Synth], state_name: str, synth_name: str, transformation: str
) -> None:
    synth = synths[synth_name]
    writer = synth.asl["States"][state_name]["ResultWriter"]
    assert writer == {
        "Resource": "arn:${Ref:AWS::Partition}:states:::s3:putObject",
        "Parameters": {"Bucket": "${Ref:" + synth.ref(synth.job.bucket) + "}", "Prefix": "results"},
        "WriterConfig": {"OutputType": "JSON", "Transformation": transformation},
    }


@pytest.mark.parametrize("state_name", ["MapPayloadItems", *S3_MAPS])
def test_default_batches_50_items_and_splits_batches_by_bytes(
    synths: dict[str, Synth], state_name: str
) -> None:
    state = synths["default"].asl["States"][state_name]
    assert state["ItemBatcher"] == {
        "MaxItemsPerBatch": DEFAULT_BATCH_SIZE,
        "MaxInputBytesPerBatch": DEFAULT_MAX_INPUT_BYTES_PER_BATCH,
        "BatchInput": {"parameters.$": "$.parameters"},
    }
    assert (DEFAULT_BATCH_SIZE, DEFAULT_MAX_INPUT_BYTES_PER_BATCH) == (50, 195_584)
    assert state["ItemSelector"] == BATCH_ITEM_SELECTOR


def test_a_full_default_batch_with_the_largest_parameters_fits_the_payload_limit() -> None:
    """Items filling MaxInputBytesPerBatch plus the largest parameters and the envelope stay <= 256 KiB."""
    parameters = {"blob": "x" * (PARAMETERS_MAX_BYTES - json_size({"blob": ""}))}
    assert json_size(parameters) == PARAMETERS_MAX_BYTES
    envelope = json_size({"Items": [], "BatchInput": {"parameters": parameters}})
    assert envelope - PARAMETERS_MAX_BYTES <= BATCH_ENVELOPE_BYTES
    assert DEFAULT_MAX_INPUT_BYTES_PER_BATCH + envelope <= STATE_PAYLOAD_LIMIT_BYTES


@pytest.mark.parametrize("state_name", ["MapPayloadItems", *S3_MAPS])
def test_compute_task_retries_throttling_with_jitter_and_keeps_only_the_payload(
    synths: dict[str, Synth], state_name: str
) -> None:
    synth = synths["default"]
    processor = synth.asl["States"][state_name]["ItemProcessor"]
    (compute_name,) = processor["States"]
    compute = processor["States"][compute_name]
    assert processor["StartAt"] == compute_name
    assert compute["Parameters"] == {
        "FunctionName": "${GetAtt:" + synth.ref(synth.compute) + ".Arn}",
        "Payload.$": "$",
    }
    assert compute["OutputPath"] == "$.Payload"
    # retry_on_service_exceptions=False: only the construct's two retriers, throttling first.
    assert compute["Retry"] == [THROTTLE_RETRY, TRANSIENT_RETRY]
    assert compute["End"] is True


def test_combine_receives_results_parameters_and_count_and_its_payload_is_the_output(
    synths: dict[str, Synth],
) -> None:
    synth = synths["default"]
    combine = synth.asl["States"]["Combine"]
    assert combine["Parameters"] == {
        "FunctionName": "${GetAtt:" + synth.ref(synth.job.combine_function) + ".Arn}",
        "Payload": {
            "results.$": "$.results",
            "parameters.$": "$.parameters",
            "count.$": "$.count",
            "batched": True,
        },
    }
    # The combiner reads a COMPACT record as a batch's list only when the Map batches.
    unbatched = synths["unbatched"].asl["States"]["Combine"]["Parameters"]["Payload"]
    assert unbatched["batched"] is False
    assert combine["OutputPath"] == "$.Payload"
    assert combine["End"] is True
    assert combine["Retry"] == [THROTTLE_RETRY, TRANSIENT_RETRY]


def test_default_retry_attempts_meet_the_throttling_target() -> None:
    """10,000 invocations at a sustained 30 % throttle rate complete with probability above 99.9 %."""
    invocations, throttle_rate = 10_000, 0.3

    def failure_bound(attempts: int) -> float:
        return invocations * throttle_rate ** (attempts + 1)

    assert failure_bound(DEFAULT_RETRY_ATTEMPTS) < 1e-3
    assert failure_bound(DEFAULT_RETRY_ATTEMPTS - 1) >= 1e-3  # the smallest value that does
    assert (1 - throttle_rate ** (DEFAULT_RETRY_ATTEMPTS + 1)) ** invocations > 0.999
    assert math.ceil(7 / math.log10(1 / throttle_rate)) - 1 == DEFAULT_RETRY_ATTEMPTS


def test_batching_moves_parameters_to_batch_input_and_renders_explicit_zero_tolerance(
    synths: dict[str, Synth],
) -> None:
    asl = synths["batched"].asl
    for state_name in ["MapPayloadItems", *S3_MAPS]:
        state = asl["States"][state_name]
        assert state["ItemBatcher"] == {
            "MaxItemsPerBatch": 10,
            "MaxInputBytesPerBatch": 65_536,
            "BatchInput": {"parameters.$": "$.parameters"},
        }
        assert state["ItemSelector"] == {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}
        assert state["ToleratedFailureCount"] == 0
        assert state["ToleratedFailurePercentage"] == 0
        assert state["MaxConcurrency"] == 50
        assert state["ResultWriter"]["Parameters"]["Prefix"] == "out/results"


def test_custom_retry_policy_and_timeout_render(synths: dict[str, Synth]) -> None:
    asl = synths["batched"].asl
    compute = asl["States"]["MapPayloadItems"]["ItemProcessor"]["States"]["ComputePayloadItems"]
    assert compute["Retry"][0] == {
        "ErrorEquals": ["Lambda.TooManyRequestsException"],
        "IntervalSeconds": 2,
        "MaxAttempts": 5,
        "BackoffRate": 3,
        "MaxDelaySeconds": 90,
        "JitterStrategy": "FULL",
    }
    assert asl["TimeoutSeconds"] == 7200


def test_state_machine_logging_tracing_and_name(synths: dict[str, Synth]) -> None:
    default = synths["default"].template
    (machine,) = [r for r in default["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ERROR"
    assert machine["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": False}
    assert "StateMachineName" not in machine["Properties"]
    batched = synths["batched"].template
    (machine,) = [r for r in batched["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["StateMachineName"] == "burst-batched"


def test_result_writer_renders_without_the_feature_flag_in_the_app(synths: dict[str, Synth]) -> None:
    """The fixture's app has no cdk.json: the construct sets the flag on its own node."""
    synth = synths["default"]
    assert synth.stack.node.try_get_context(RESULT_WRITER_V2_FLAG) is None
    assert synth.job.node.try_get_context(RESULT_WRITER_V2_FLAG) is True
    assert "ResultWriter" in synth.asl["States"]["MapPayloadItems"]


def test_without_the_flag_aws_cdk_lib_drops_result_writer_v2() -> None:
    """The control for the test above: a bare DistributedMap in a flagless app loses its ResultWriter."""
    app = fast_app()
    stack = cdk.Stack(app, "Bare")
    bucket = s3.Bucket(stack, "Bucket")
    bare_map = sfn.DistributedMap(
        stack,
        "Map",
        result_writer_v2=sfn.ResultWriterV2(bucket=bucket, prefix="results"),
    )
    bare_map.item_processor(sfn.Pass(stack, "Work"))
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(bare_map))
    assert "ResultWriter" not in only_state_machine(template_of(stack))["States"]["Map"]


# -------------------------------------------------------------------------------------------------
# input_prefix mode, upload trigger, account safety
def test_objects_mode_lists_the_input_prefix_and_gives_compute_the_key(synths: dict[str, Synth]) -> None:
    synth = synths["objects"]
    asl = synth.asl
    bucket = "${Ref:" + synth.ref(synth.job.bucket) + "}"
    assert asl["StartAt"] == "Prepare"
    assert asl["States"]["Prepare"]["Parameters"] == {
        "job.$": "States.JsonMerge(States.StringToJson('{\"parameters\": {}}'), $, false)"
    }
    assert asl["States"]["Prepare"]["OutputPath"] == "$.job"
    assert asl["States"]["Prepare"]["Next"] == "MapS3Objects"
    state = asl["States"]["MapS3Objects"]
    assert state["ItemReader"] == {
        "Resource": "arn:${Ref:AWS::Partition}:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": bucket, "Prefix": "input/"},
    }
    assert state["ItemSelector"] == {
        "item": {"bucket": bucket, "key.$": "$$.Map.Item.Value.Key", "output_prefix": "output/"},
        "index.$": "$$.Map.Item.Index",
    }
    assert state["ItemBatcher"]["BatchInput"] == {"parameters.$": "$.parameters"}
    assert asl["States"]["Combine"]["Parameters"]["Payload"] == {
        "results.$": "$.results",
        "parameters.$": "$.parameters",
        "batched": True,
    }
    assert synth.job.start_function is None
    assert "Start" not in asl["States"]


def test_objects_mode_grants_compute_its_prefixes_only(synths: dict[str, Synth]) -> None:
    synth = synths["objects"]
    bucket_arn = {"Fn::GetAtt": [synth.ref(synth.job.bucket), "Arn"]}
    statements = statements_of(synth.template, role_of(synth.stack, synth.compute))
    granted = {(tuple(actions_of(s)), str(resources_of(s))) for s in statements}
    assert granted == {
        (("s3:GetObject",), str([{"Fn::Join": ["", [bucket_arn, "/input/*"]]}])),
        (("s3:PutObject",), str([{"Fn::Join": ["", [bucket_arn, "/output/*"]]}])),
    }


def test_start_on_upload_rule_starts_the_state_machine_for_objects_under_the_prefix(
    synths: dict[str, Synth],
) -> None:
    synth = synths["objects"]
    resources = synth.template["Resources"]
    (rule,) = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"] == {
        "bucket": {"name": [{"Ref": synth.ref(synth.job.bucket)}]},
        "object": {"key": [{"prefix": "input/"}]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": synth.ref(synth.job.state_machine)}
    bucket = resources[synth.ref(synth.job.bucket)]
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_reserved_concurrency_is_set_on_the_compute_function(synths: dict[str, Synth]) -> None:
    synth = synths["objects"]
    function = synth.template["Resources"][synth.ref(synth.compute)]
    assert function["Properties"]["ReservedConcurrentExecutions"] == 100
    default = synths["default"]
    assert (
        "ReservedConcurrentExecutions"
        not in default.template["Resources"][default.ref(default.compute)]["Properties"]
    )


# -------------------------------------------------------------------------------------------------
# bucket, functions, IAM
def test_created_bucket_is_private_tls_only_encrypted_and_expires_job_objects(
    synths: dict[str, Synth],
) -> None:
    synth = synths["batched"]
    resources = synth.template["Resources"]
    bucket = resources[synth.ref(synth.job.bucket)]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    rules = {rule["Prefix"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"out/items/", "out/results/"}
    for rule in rules.values():
        assert rule["ExpirationInDays"] == 3
        assert rule["Status"] == "Enabled"
    (policy,) = [r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_default_functions_run_python_3_13_on_arm64_with_the_layer_and_know_the_prefixes(
    synths: dict[str, Synth],
) -> None:
    synth = synths["default"]
    resources = synth.template["Resources"]
    layer_ref = {"Ref": synth.ref(synth.job.runtime_layer)}
    for function in (synth.job.start_function, synth.job.combine_function):
        properties = resources[synth.ref(function)]["Properties"]
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Handler"] == "handler.handler"
        assert properties["Layers"] == [layer_ref]
        assert properties["Environment"]["Variables"] == {
            "BURSTMAP_BUCKET": {"Ref": synth.ref(synth.job.bucket)},
            "BURSTMAP_RESULT_PREFIX": "results",
            "BURSTMAP_ITEMS_PREFIX": "items",
        }
        log_group = resources[properties["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == 30


def test_function_roles_get_object_actions_on_their_prefix_only(synths: dict[str, Synth]) -> None:
    synth = synths["default"]
    bucket_arn = {"Fn::GetAtt": [synth.ref(synth.job.bucket), "Arn"]}
    start = statements_of(synth.template, role_of(synth.stack, synth.job.start_function))
    assert start == [
        {
            # AbortMultipartUpload: start aborts an upload that failed (runtime/s3_objects.py).
            "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/items/*"]]},
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["items/*"]}},
            "Effect": "Allow",
            "Resource": bucket_arn,
        },
    ]
    combine = statements_of(synth.template, role_of(synth.stack, synth.job.combine_function))
    assert combine == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/results/*"]]},
        }
    ]


def test_state_machine_role_is_scoped_to_its_functions_and_prefixes(synths: dict[str, Synth]) -> None:
    synth = synths["default"]
    role = logical_id(synth.stack, synth.job.state_machine.role)
    statements = statements_of(synth.template, role)
    bucket_arn = {"Fn::GetAtt": [synth.ref(synth.job.bucket), "Arn"]}
    s3_statements = [s for s in statements if actions_of(s)[0].startswith("s3:")]
    s3_resources = sorted(str(r) for s in s3_statements for r in resources_of(s))
    assert s3_resources == sorted(
        str({"Fn::Join": ["", [bucket_arn, suffix]]}) for suffix in ("/results/*", "/items/*")
    )
    invoked = {
        str(r)
        for s in statements
        if actions_of(s) == ["lambda:InvokeFunction"]
        for r in resources_of(s)
        if "Fn::GetAtt" in r
    }
    functions = (synth.compute, synth.job.start_function, synth.job.combine_function)
    assert invoked == {str({"Fn::GetAtt": [synth.ref(f), "Arn"]}) for f in functions}
    # Nothing on the whole bucket: no statement names the bucket ARN alone or <bucket>/*.
    assert all(bucket_arn not in resources_of(s) for s in s3_statements)


def test_grants_give_callers_start_and_result_read(stack: cdk.Stack, compute: lambda_.Function) -> None:
    job = BurstCompute(stack, "Job", compute=compute)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    job.grant_start_execution(caller)
    job.grant_read_results(caller)
    template = template_of(stack)
    statements = statements_of(template, logical_id(stack, caller))
    by_action = {tuple(actions_of(s)): resources_of(s) for s in statements}
    assert by_action[("states:StartExecution",)] == [{"Ref": logical_id(stack, job.state_machine)}]
    bucket_arn = {"Fn::GetAtt": [logical_id(stack, job.bucket), "Arn"]}
    (read_resources,) = [r for a, r in by_action.items() if "s3:GetObject*" in a]
    assert {"Fn::Join": ["", [bucket_arn, "/results/*"]]} in read_resources


def test_grant_run_gives_what_the_cli_needs(stack: cdk.Stack, compute: lambda_.Function) -> None:
    job = BurstCompute(stack, "Job", compute=compute)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    grants = job.grant_run(caller)
    assert len(grants) == 8 and all(grant.success for grant in grants)
    statements = statements_of(template_of(stack), logical_id(stack, caller))
    machine = {"Ref": logical_id(stack, job.state_machine)}
    granted = {action for s in statements for action in actions_of(s)}
    assert {
        "states:StartExecution",
        "states:DescribeExecution",
        "states:DescribeMapRun",
        "states:ListMapRuns",
        "states:RedriveExecution",
        "states:StopExecution",
        "s3:GetObject*",
        "s3:PutObject",
    } <= granted
    (start,) = [s for s in statements if actions_of(s) == ["states:StartExecution"]]
    assert resources_of(start) == [machine]
    name = {"Fn::GetAtt": [logical_id(stack, job.state_machine), "Name"]}
    partition_region_account = ["arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":"]
    (map_runs,) = [s for s in statements if actions_of(s) == ["states:DescribeMapRun"]]
    assert resources_of(map_runs) == [
        {"Fn::Join": ["", [*partition_region_account, {"Ref": "AWS::AccountId"}, ":mapRun:", name, "/*"]]}
    ]
    (list_map_runs,) = [s for s in statements if actions_of(s) == ["states:ListMapRuns"]]
    (execution_arns,) = resources_of(list_map_runs)
    assert ":execution:" in execution_arns["Fn::Join"][1]
    bucket_arn = {"Fn::GetAtt": [logical_id(stack, job.bucket), "Arn"]}
    (read,) = [s for s in statements if "s3:GetObject*" in actions_of(s)]
    assert {"Fn::Join": ["", [bucket_arn, "/results/*"]]} in resources_of(read)
    assert {"Fn::Join": ["", [bucket_arn, "/*"]]} not in resources_of(read)  # objects of results/ only


# -------------------------------------------------------------------------------------------------
# validation: one test per message
@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"tolerated_failure_percentage": 120},
            "tolerated_failure_percentage must be between 0 and 100, got 120",
        ),
        (
            {"tolerated_failure_percentage": -1},
            "tolerated_failure_percentage must be between 0 and 100, got -1",
        ),
        ({"tolerated_failure_count": -1}, "tolerated_failure_count must be an integer of at least 0, got -1"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be an integer of at least 1, got 2.5"),
        (
            {"batch_size": 10, "max_input_bytes_per_batch": 300_000},
            "max_input_bytes_per_batch must be between 1 and 262144, got 300000",
        ),
        (
            {"batch_size": 1, "max_input_bytes_per_batch": 1024},
            "max_input_bytes_per_batch applies only to batches: set batch_size above 1, got batch_size=1",
        ),
        (
            {"result_transformation": sfn.Transformation.FLATTEN},
            "result_transformation must be Transformation.COMPACT or Transformation.NONE",
        ),
        ({"max_concurrency": 0}, "max_concurrency must be between 1 and 10000, got 0"),
        ({"max_concurrency": 20_000}, "max_concurrency must be between 1 and 10000, got 20000"),
        (
            {"result_prefix": "/results"},
            "result_prefix must be a non-empty S3 key prefix without a leading or trailing '/', "
            "got '/results'",
        ),
        (
            {"items_prefix": "items/"},
            "items_prefix must be a non-empty S3 key prefix without a leading or trailing '/', got 'items/'",
        ),
        (
            {"items_prefix": "results"},
            "result_prefix, items_prefix, output_prefix and input_prefix must differ",
        ),
        ({"expire_after_days": 0}, "expire_after_days must be an integer of at least 1, got 0"),
        ({"retry_attempts": -1}, "retry_attempts must be an integer between 0 and 99999999, got -1"),
        ({"retry_backoff_rate": 0.5}, "retry_backoff_rate must be at least 1.0, got 0.5"),
        (
            {"retry_interval": cdk.Duration.millis(500)},
            "retry_interval must be at least 1 second, got 0.5 seconds",
        ),
        (
            {"retry_interval": cdk.Duration.seconds(10), "retry_max_delay": cdk.Duration.seconds(5)},
            "retry_max_delay must be at least retry_interval (10 seconds), got 5 seconds",
        ),
        (
            {"start_on_upload": True},
            "start_on_upload needs input_prefix: set input_prefix to the prefix uploads land under",
        ),
        (
            {"compute_reserved_concurrency": 0},
            "compute_reserved_concurrency must be an integer of at least 1, got 0",
        ),
    ],
)
def test_invalid_props_fail_with_a_plain_sentence(
    stack: cdk.Stack, compute: lambda_.Function, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(BurstComputeValidationError) as raised:
        BurstCompute(stack, "Job", compute=compute, **props)
    assert message in str(raised.value)


def test_start_and_input_prefix_are_exclusive(stack: cdk.Stack, compute: lambda_.Function) -> None:
    with pytest.raises(
        BurstComputeValidationError, match="Provide either start or input_prefix, but not both"
    ):
        BurstCompute(
            stack, "Job", compute=compute, start=inline_function(stack, "Start"), input_prefix="input"
        )


def test_reserved_concurrency_needs_a_function_defined_in_the_app(stack: cdk.Stack) -> None:
    imported = lambda_.Function.from_function_arn(
        stack, "Imported", "arn:aws:lambda:us-east-1:123456789012:function:existing"
    )
    with pytest.raises(
        BurstComputeValidationError, match="compute_reserved_concurrency needs a compute Function"
    ):
        BurstCompute(stack, "Job", compute=imported, compute_reserved_concurrency=10)


def test_every_error_is_reported_at_once(stack: cdk.Stack, compute: lambda_.Function) -> None:
    with pytest.raises(BurstComputeValidationError) as raised:
        BurstCompute(stack, "Job", compute=compute, batch_size=0, tolerated_failure_percentage=101)
    assert "batch_size must be" in str(raised.value)
    assert "tolerated_failure_percentage must be" in str(raised.value)


def test_compute_is_told_when_its_results_are_summed_by_the_default_combiner(
    synths: dict[str, Synth], stack: cdk.Stack, compute: lambda_.Function
) -> None:
    """compute_handler then refuses a result the exact sum cannot add as soon as it is computed."""
    synth = synths["default"]
    variables = synth.template["Resources"][synth.ref(synth.compute)]["Properties"]["Environment"][
        "Variables"
    ]
    assert variables == {ENV_SUMMED_RESULTS: "1"}

    own_combiner = inline_function(stack, "Combine")
    BurstCompute(stack, "Job", compute=compute, combine=own_combiner)
    properties = template_of(stack)["Resources"][logical_id(stack, compute)]["Properties"]
    assert ENV_SUMMED_RESULTS not in properties.get("Environment", {}).get("Variables", {})
