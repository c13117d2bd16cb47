"""The example app: outputs, cdk.json's flags, context overrides, cdk-nag, cfn-lint, the CloudFormation
validator, the runtime layer's contents, and ``npx cdk synth`` with the pinned CLI, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from cdk_support import only_state_machine

from burstmap.cdk.assets import package_dir
from burstmap.cdk.definition import RESULT_WRITER_V2_FLAG

# The example app's directory is on sys.path when `python app.py` runs; the tests import it the same way.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from infra.stack import (  # noqa: E402
    PROJECT_DIR,
    STACK_NAME,
    ContextOverrideError,
    build_app,
    cdk_json_context,
)

#: cfn-lint rules that CDK output always trips, and why they are ignored.
CFN_LINT_IGNORED = {
    # CDK adds an explicit DependsOn from each function (and the state machine) to its role's default
    # policy, besides the GetAtt on the role: redundant for CloudFormation, deliberate in CDK.
    "W3005": "CDK's explicit DependsOn on a role that a GetAtt already implies",
}


def _synth(
    outdir: Path, context: dict[str, Any] | None = None, *, validator: bool = False, nag: bool = False
):
    app = build_app(context, outdir=str(outdir), builtin_cloud_formation_validation=validator)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, app.synth()


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example app with cdk-nag's AwsSolutionsChecks, synthesized once (raises on any finding)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, assembly = _synth(outdir, nag=True)
    stack_artifact = assembly.get_stack_artifact(STACK_NAME)
    return {
        "app": app,
        "outdir": outdir,
        "template": stack_artifact.template,
        "template_path": Path(stack_artifact.template_full_path),
    }


def _validation_report(outdir: Path) -> list[dict[str, Any]]:
    path = outdir / "validation-report.json"
    return json.loads(path.read_text())["pluginReports"] if path.exists() else []


def test_cdk_nag_aws_solutions_leaves_no_unacknowledged_finding(synthesized: dict[str, Any]) -> None:
    # synth() raises ValidationFailed on any unacknowledged finding; the report confirms none.
    violations = [v for report in _validation_report(synthesized["outdir"]) for v in report["violations"]]
    assert violations == []


def test_outputs_are_the_state_machine_arn_and_the_bucket_name(synthesized: dict[str, Any]) -> None:
    template = synthesized["template"]
    outputs = template["Outputs"]
    resources = template["Resources"]
    machine = next(k for k, r in resources.items() if r["Type"] == "AWS::StepFunctions::StateMachine")
    bucket = next(k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket")
    assert outputs["StateMachineArn"]["Value"] == {"Ref": machine}
    assert outputs["BucketName"]["Value"] == {"Ref": bucket}


def test_the_app_honours_every_flag_of_cdk_json(synthesized: dict[str, Any]) -> None:
    flags = cdk_json_context()
    assert flags[RESULT_WRITER_V2_FLAG] is True
    app = synthesized["app"]
    assert {key: app.node.try_get_context(key) for key in flags} == flags


def test_cdk_json_carries_the_flags_cdk_init_writes() -> None:
    recommended = json.loads(
        (PROJECT_DIR / "node_modules/aws-cdk/lib/init-templates/.recommended-feature-flags.json").read_text()
    )
    cdk_json = json.loads((PROJECT_DIR / "cdk.json").read_text())
    assert cdk_json["context"] == recommended
    assert cdk_json["app"].endswith("python app.py")


def test_example_compute_uses_the_layer_on_the_chosen_runtime(synthesized: dict[str, Any]) -> None:
    resources = synthesized["template"]["Resources"]
    functions = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    (layer,) = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    compute = next(p for k, p in functions.items() if k.startswith("ExampleCompute"))
    assert compute["Handler"] == "handler.handler"
    assert compute["Layers"] == [{"Ref": layer}]
    assert {p["Runtime"] for p in functions.values()} == {"python3.13"}
    assert {tuple(p["Architectures"]) for p in functions.values()} == {("arm64",)}


def test_runtime_layer_ships_the_runtime_folder_and_nothing_else(synthesized: dict[str, Any]) -> None:
    resources = synthesized["template"]["Resources"]
    (layer,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    asset_hash = layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    asset_dir = synthesized["outdir"] / f"asset.{asset_hash}"
    shipped = sorted(p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file())
    package = package_dir()
    runtime_sources = [
        p.relative_to(package).as_posix()
        for p in (package / "runtime").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    expected = ["__init__.py", "compute.py", "py.typed", *runtime_sources]
    assert shipped == sorted(f"python/burstmap/{name}" for name in expected)
    for module in ("contracts", "compute", "json_stream", "results", "combine", "start"):
        assert f"python/burstmap/runtime/{module}.py" in shipped


def test_cfn_lint_passes_on_the_synthesized_template(synthesized: dict[str, Any]) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--ignore-checks",
            *CFN_LINT_IGNORED,
            "--",
            str(synthesized["template_path"]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_runs_one_item_a_child_and_writes_compact_results(synthesized: dict[str, Any]) -> None:
    """Its results (~2.16 digits per byte count) would overflow a batch's 256 KiB output: no batching."""
    asl = only_state_machine(synthesized["template"])
    for name in ("MapPayloadItems", "MapS3JsonlItems", "MapS3CsvItems", "MapS3JsonItems"):
        state = asl["States"][name]
        assert "ItemBatcher" not in state
        assert state["ResultWriter"]["WriterConfig"] == {"OutputType": "JSON", "Transformation": "COMPACT"}
    assert asl["States"]["Combine"]["Parameters"]["Payload"]["batched"] is False


def test_context_overrides_reach_the_construct(tmp_path: Path) -> None:
    # From the CLI, -c values arrive as strings.
    _, assembly = _synth(tmp_path, {"burstmap:tolerated_failure_count": "10", "burstmap:retry_attempts": "4"})
    asl = only_state_machine(assembly.get_stack_artifact(STACK_NAME).template)
    state = asl["States"]["MapPayloadItems"]
    assert state["ToleratedFailureCount"] == 10
    (compute,) = state["ItemProcessor"]["States"].values()
    assert compute["Retry"][0]["MaxAttempts"] == 4


def test_a_bad_context_override_names_the_key_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        ContextOverrideError,
        match=r"context burstmap:tolerated_failure_count must be a non-negative number, got 'ten'",
    ):
        _synth(tmp_path, {"burstmap:tolerated_failure_count": "ten"})


@pytest.mark.parametrize("key", ["burstmap:batch_size", "burstmap:max_concurrency", "burstmap:typo"])
def test_a_context_key_the_stack_does_not_read_is_refused_by_name(tmp_path: Path, key: str) -> None:
    """Batch size and concurrency live in the stack (and in `burstmap run` options for a local run): a
    context key for them would silently deploy the stack's own values."""
    with pytest.raises(ContextOverrideError, match=rf"context {key} is not read by the example stack"):
        _synth(tmp_path, {key: "10"})


def test_synth_with_the_builtin_cloudformation_validator_on(tmp_path: Path) -> None:
    """The one synth with CDK's CloudFormation validator (cdk.json makes its findings errors)."""
    app, _ = _synth(tmp_path, validator=True)
    assert app.node.try_get_context("@aws-cdk/core:validateAgainstDefaultRules") is True
    violations = [v for report in _validation_report(tmp_path) for v in report["violations"]]
    assert violations == []


@pytest.mark.slow
def test_npx_cdk_synth_works_offline_with_the_pinned_cli(tmp_path: Path) -> None:
    cli = PROJECT_DIR / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run ./scripts/setup: it installs the CDK CLI pinned in package.json"
    pinned = json.loads((PROJECT_DIR / "package.json").read_text())["devDependencies"]["aws-cdk"]
    version = subprocess.run(
        [str(cli), "--version"], capture_output=True, text=True, check=True, cwd=PROJECT_DIR
    )
    assert version.stdout.startswith(pinned)
    offline = {
        **os.environ,
        # Any network call fails at once through a dead proxy: synth must not need one.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    result = subprocess.run(
        [
            str(cli),
            "synth",
            "--quiet",
            "--no-notices",
            "--no-version-reporting",
            "-o",
            str(tmp_path / "cdk.out"),
            "-c",
            "burstmap:retry_attempts=7",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
        env=offline,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((tmp_path / "cdk.out" / f"{STACK_NAME}.template.json").read_text())
    asl = only_state_machine(template)
    (compute,) = asl["States"]["MapPayloadItems"]["ItemProcessor"]["States"].values()
    assert compute["Retry"][0]["MaxAttempts"] == 7
    assert "ResultWriter" in asl["States"]["MapPayloadItems"]
