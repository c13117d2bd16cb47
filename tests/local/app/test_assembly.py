"""Cloud assembly -> local values: synthesis reuse, token resolution, function extraction."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from burstmap.client.local_app import function_specs
from burstmap.local.app.assembly import load_assembly
from burstmap.local.app.errors import AssemblyError, SynthesisError, UnresolvableToken
from burstmap.local.app.synth import synthesize
from burstmap.local.core.limits import LOCAL_ACCOUNT

SMALL_APP = textwrap.dedent(
    """
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_, aws_s3 as s3
    from aws_cdk import aws_stepfunctions as sfn, aws_stepfunctions_tasks as tasks

    app = cdk.App()
    stack = cdk.Stack(app, "Small")
    bucket = s3.Bucket(stack, "Results")
    layer = lambda_.LayerVersion(stack, "Layer", code=lambda_.Code.from_asset("layer"))
    fn = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="h.handler",
        code=lambda_.Code.from_asset("code"), layers=[layer],
        environment={
            "BUCKET": bucket.bucket_name,
            "BUCKET_ARN": bucket.bucket_arn,
            "FROM_CONTEXT": str(app.node.try_get_context("small:value")),
            "REGION": cdk.Aws.REGION,
        },
        timeout=cdk.Duration.seconds(30), memory_size=256,
    )
    task = tasks.LambdaInvoke(stack, "Invoke", lambda_function=fn, output_path="$.Payload")
    machine = sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(task))
    cdk.CfnOutput(stack, "StateMachineArn", value=machine.state_machine_arn)
    cdk.CfnOutput(stack, "BucketName", value=bucket.bucket_name)
    app.synth()
    """
)


def _write_small_app(app_dir: Path) -> Path:
    (app_dir / "code").mkdir(parents=True)
    (app_dir / "code" / "h.py").write_text("def handler(event, context):\n    return event\n")
    (app_dir / "layer" / "python" / "shared").mkdir(parents=True)
    (app_dir / "layer" / "python" / "shared" / "__init__.py").write_text("VALUE = 1\n")
    (app_dir / "app.py").write_text(SMALL_APP)
    (app_dir / "cdk.json").write_text(
        json.dumps({"app": "python3 app.py", "context": {"small:value": "json"}})
    )
    return app_dir


@pytest.fixture(scope="module")
def small_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CDK app (bucket, layer, function, state machine), synthesized once for the module."""
    app_dir = _write_small_app(tmp_path_factory.mktemp("small") / "app")
    synthesize(app_dir)
    return app_dir


def test_function_extracted_with_code_layer_environment_and_limits(small_app: Path) -> None:
    app = load_assembly(small_app / "cdk.out")

    (fn,) = app.functions
    (bucket,) = app.buckets
    assert fn.handler == "h.handler"
    assert fn.name.startswith("Small-Fn")
    assert fn.arn == f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:{fn.name}"
    (layer,) = fn.layers
    assert (fn.code_dir / "h.py").read_text().startswith("def handler")
    assert (layer / "python" / "shared" / "__init__.py").is_file()
    assert fn.code_paths == [
        fn.code_dir,
        layer / "python" / "lib" / "python3.12" / "site-packages",  # Lambda's order: site-packages first
        layer / "python",
    ]
    assert (fn.runtime, fn.architecture, fn.bundling) == ("python3.12", "x86_64", None)
    assert fn.environment == {
        "BUCKET": bucket.name,
        "BUCKET_ARN": f"arn:aws:s3:::{bucket.name}",
        "FROM_CONTEXT": "json",
        "REGION": "us-east-1",
    }
    assert bucket.name == bucket.name.lower() and bucket.name.startswith("small-results")
    assert (fn.timeout_seconds, fn.memory_mb) == (30.0, 256)


def test_definition_tokens_resolve_to_the_local_function_arn(small_app: Path) -> None:
    app = load_assembly(small_app / "cdk.out")

    machine = app.state_machine()
    invoke = machine.definition["States"]["Invoke"]
    assert invoke["Resource"] == "arn:aws:states:::lambda:invoke"
    assert invoke["Parameters"] == {"FunctionName": app.functions[0].arn, "Payload.$": "$"}
    assert app.outputs == {"StateMachineArn": machine.arn, "BucketName": app.buckets[0].name}
    assert app.state_machine(machine.logical_id) is machine


def test_function_spec_matches_the_runtime_interface(small_app: Path) -> None:
    (spec,) = function_specs(load_assembly(small_app / "cdk.out"))

    assert spec.handler == "h.handler" and spec.timeout_seconds == 30.0 and spec.memory_mb == 256
    assert spec.environment["FROM_CONTEXT"] == "json"


def test_synthesis_is_reused_until_an_input_or_the_context_changes(small_app: Path) -> None:
    assert not synthesize(small_app).synthesized

    handler = small_app / "code" / "h.py"
    later = handler.stat().st_mtime + 5
    os.utime(handler, (later, later))
    assert not synthesize(small_app).synthesized  # touched, not changed
    handler.write_text("def handler(event, context):\n    return [event]\n")
    changed = synthesize(small_app)
    assert (changed.synthesized, changed.reason) == (True, "code/h.py changed")
    code_dir = load_assembly(small_app / "cdk.out").functions[0].code_paths[0]
    assert (code_dir / "h.py").read_text().endswith("return [event]\n")  # the new copy

    overridden = synthesize(small_app, context={"small:value": "override"})
    assert (overridden.synthesized, overridden.reason) == (True, "CDK context small:value changed")
    app = load_assembly(small_app / "cdk.out")
    assert app.functions[0].environment["FROM_CONTEXT"] == "override"


def test_failing_app_reports_its_output(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise RuntimeError('the app is broken')\n")

    with pytest.raises(SynthesisError) as raised:
        synthesize(tmp_path)

    message = str(raised.value)
    assert "\n" not in message  # one line for the CLI; the traceback is in the log it names
    assert "RuntimeError: the app is broken" in message
    log = tmp_path / "cdk.out" / "burstmap-synth.log"
    assert str(log) in message
    assert "Traceback" in log.read_text() and "the app is broken" in log.read_text()


def test_missing_app_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(SynthesisError, match="no CDK app in"):
        synthesize(tmp_path)


# -- hand-written templates: token forms CDK rarely emits, and the errors --------------------------------


def _assembly(tmp_path: Path, resources: dict[str, Any], **template: Any) -> Path:
    (tmp_path / "asset.code").mkdir()
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    "S": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "S.template.json"},
                    }
                },
            }
        )
    )
    (tmp_path / "S.template.json").write_text(json.dumps({"Resources": resources, **template}))
    return tmp_path


def _function(variables: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Metadata": {"aws:asset:path": "asset.code", "aws:asset:property": "Code"},
        "Properties": {
            "Handler": "h.handler",
            "Runtime": "python3.12",
            "Code": {"S3Key": "x.zip"},
            "Environment": {"Variables": variables},
            **properties,
        },
    }


BUCKET = {"Type": "AWS::S3::Bucket"}


def test_sub_select_split_and_pseudo_parameters(tmp_path: Path) -> None:
    variables = {
        "SUB": {"Fn::Sub": "${AWS::Partition}:${AWS::Region}:${AWS::AccountId}/${B}/${B.Arn}/${!Literal}"},
        "SUB_VARS": {"Fn::Sub": ["${x}-${AWS::StackName}", {"x": {"Ref": "B"}}]},
        "SELECT": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "PARAM": {"Ref": "Stage"},
        "MAP": {"Fn::FindInMap": ["M", "k", "v"]},
    }
    out = _assembly(
        tmp_path,
        {"B": BUCKET, "F": _function(variables)},
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
        Mappings={"M": {"k": {"v": "m"}}},
    )

    env = load_assembly(out).functions[0].environment

    assert env["SUB"] == f"aws:us-east-1:{LOCAL_ACCOUNT}/s-b/arn:aws:s3:::s-b/${{Literal}}"
    assert env == {**env, "SUB_VARS": "s-b-S", "SELECT": "b", "PARAM": "dev", "MAP": "m"}


def test_explicit_names_are_kept(tmp_path: Path) -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "my-bucket"}}
    out = _assembly(tmp_path, {"B": bucket, "F": _function({"B": {"Ref": "B"}}, FunctionName="worker")})

    app = load_assembly(out)

    assert app.functions[0].arn == f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:worker"
    assert app.functions[0].environment == {"B": "my-bucket"}
    assert [b.name for b in app.buckets] == ["my-bucket"]


def test_unresolvable_reference_names_resource_and_property(tmp_path: Path) -> None:
    queue = {"Type": "AWS::SQS::Queue"}
    out = _assembly(tmp_path, {"Q": queue, "F": _function({"QUEUE": {"Ref": "Q"}})})

    with pytest.raises(
        UnresolvableToken, match=r"S/F property Environment\.Variables.*AWS::SQS::Queue"
    ) as info:
        load_assembly(out)
    assert (info.value.resource, info.value.property) == ("F", "Environment.Variables.QUEUE")


def test_import_value_is_refused(tmp_path: Path) -> None:
    out = _assembly(tmp_path, {"F": _function({"X": {"Fn::ImportValue": "Other:Export"}})})

    with pytest.raises(UnresolvableToken, match="Fn::ImportValue is not evaluated locally"):
        load_assembly(out)


def test_code_found_through_assets_json_without_metadata(tmp_path: Path) -> None:
    fn = _function({})
    del fn["Metadata"]
    fn["Properties"]["Code"] = {"S3Bucket": {"Fn::Sub": "cdk-${AWS::AccountId}"}, "S3Key": "abc123.zip"}
    out = _assembly(tmp_path, {"F": fn})
    (out / "S.assets.json").write_text(
        json.dumps({"files": {"abc123": {"source": {"path": "asset.code", "packaging": "zip"}}}})
    )

    assert load_assembly(out).functions[0].code_paths == [(out / "asset.code").resolve()]


def test_definition_substitutions_and_machine_choice(tmp_path: Path) -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${greeting}", "End": True}}}
    machine = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "DefinitionString": json.dumps(definition),
            "DefinitionSubstitutions": {"greeting": {"Fn::GetAtt": ["F", "Arn"]}},
        },
    }
    other = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"StateMachineName": "other", "Definition": definition},
    }
    out = _assembly(tmp_path, {"F": _function({}), "M": machine, "Other": other})
    app = load_assembly(out)

    with pytest.raises(AssemblyError, match="has 2 state machines.*name one by its logical id"):
        app.state_machine()
    assert app.state_machine("M").definition["States"]["P"]["Result"] == app.functions[0].arn
    assert app.state_machine("Other").arn.endswith(":stateMachine:other")
    assert app.state_machine("other") is app.state_machine("Other")  # its StateMachineName is its name
    assert app.state_machine("M").name == "S-M"  # none: the name CloudFormation would generate
    with pytest.raises(AssemblyError, match="no state machine 'Nope'"):
        app.state_machine("Nope")


def test_non_python_function_is_skipped_but_refused_when_invoked(tmp_path: Path) -> None:
    node = _function({}, Runtime="nodejs20.x")
    task = {"Type": "Task", "Resource": {"Fn::GetAtt": ["N", "Arn"]}, "End": True}
    machine = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"Definition": {"StartAt": "T", "States": {"T": task}}},
    }
    out = _assembly(tmp_path, {"N": node, "M": machine})
    app = load_assembly(out)

    assert app.functions == []
    with pytest.raises(AssemblyError, match="runs Python functions only"):
        app.check_runnable(app.state_machine())


def test_missing_manifest_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="synthesize the app first"):
        load_assembly(tmp_path)
