"""Picking a state machine by construct path, logical id or name; the compute settings of a job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from burstmap.local.app.assembly import load_assembly
from burstmap.local.app.errors import AssemblyError
from burstmap.local.app.machines import ComputeSettings, compute_settings, machine_paths, select_state_machine


def _function(path: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Metadata": {"aws:cdk:path": path, "aws:asset:path": "asset.code", "aws:asset:property": "Code"},
        "Properties": {
            "Handler": "h.handler",
            "Runtime": "python3.12",
            "Code": {"S3Key": "x.zip"},
            **properties,
        },
    }


def _machine(path: str, definition: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Metadata": {"aws:cdk:path": path},
        "Properties": {"Definition": definition, **properties},
    }


def _map_of(function: str, **fields: Any) -> dict[str, Any]:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": {"Fn::GetAtt": [function, "Arn"]}, "Payload.$": "$"},
        "End": True,
    }
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "T", "States": {"T": task}}
    return {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}},
    }


def _assembly(out: Path, stacks: dict[str, dict[str, Any]]):
    (out / "asset.code").mkdir()
    artifacts = {
        stack: {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{stack}.json"}}
        for stack in stacks
    }
    (out / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    for stack, resources in stacks.items():
        (out / f"{stack}.json").write_text(json.dumps({"Resources": resources}))
    return load_assembly(out)


@pytest.fixture
def two_jobs(tmp_path: Path):
    resources = {
        "SquaresFn": _function(
            "MyStack/Squares/Fn/Resource", MemorySize=1769, Timeout=60, Architectures=["arm64"]
        ),
        "DigitsFn": _function("MyStack/DigitsFn/Resource"),
        "SquaresSM": _machine(
            "MyStack/Squares/StateMachine/Resource",
            _map_of("SquaresFn", ItemBatcher={"MaxItemsPerBatch": 50}, MaxConcurrency=900),
        ),
        "DigitsSM": _machine("MyStack/Digits/Resource", _map_of("DigitsFn"), StateMachineName="digits-job"),
    }
    return _assembly(tmp_path, {"MyStack": resources})


def test_state_machines_are_named_by_their_construct(two_jobs) -> None:
    assert list(machine_paths(two_jobs)) == ["MyStack/Squares", "MyStack/Digits"]


@pytest.mark.parametrize(
    "wanted",
    ["MyStack/Squares", "/MyStack/Squares", "MyStack/Squares/StateMachine", "SquaresSM", "MyStack/SquaresSM"],
)
def test_a_state_machine_is_found_by_path_or_logical_id(two_jobs, wanted: str) -> None:
    path, machine = select_state_machine(two_jobs, wanted)
    assert (path, machine.logical_id) == ("MyStack/Squares", "SquaresSM")


def test_by_name_and_arn(two_jobs) -> None:
    path, machine = select_state_machine(two_jobs, "digits-job")
    assert (path, machine.logical_id) == ("MyStack/Digits", "DigitsSM")
    assert select_state_machine(two_jobs, machine.arn)[1] is machine


def test_several_and_none_named_lists_them_in_one_line(two_jobs, tmp_path: Path) -> None:
    with pytest.raises(AssemblyError) as raised:
        select_state_machine(two_jobs, None)
    assert str(raised.value) == (
        f"the app in {tmp_path} has 2 state machines (MyStack/Squares, MyStack/Digits): choose one with "
        "--state-machine (state_machine= in Python), e.g. --state-machine MyStack/Squares"
    )


def test_a_stack_with_two_jobs_names_both(two_jobs) -> None:
    with pytest.raises(
        AssemblyError,
        match=r"^--state-machine MyStack names several state machines: "
        r"MyStack/Squares, MyStack/Digits$",
    ):
        select_state_machine(two_jobs, "MyStack")


def test_a_stack_with_one_job_names_it(tmp_path: Path) -> None:
    """Two stacks of one job each (a user's TitlesBundled and TitlesPlain): the stack's name is enough."""
    app = _assembly(
        tmp_path,
        {
            stack: {
                "Fn": _function(f"{stack}/Job/Fn/Resource"),
                "SM": _machine(f"{stack}/Job/StateMachine/Resource", _map_of("Fn")),
            }
            for stack in ("Bundled", "Plain")
        },
    )
    assert select_state_machine(app, "Plain")[0] == "Plain/Job"
    assert select_state_machine(app, "Bundled")[0] == "Bundled/Job"


def test_an_unknown_name_lists_what_there_is(two_jobs) -> None:
    with pytest.raises(
        AssemblyError, match=r"no state machine 'MyStack/Cubes' .*; it has: MyStack/Squares, MyStack/Digits$"
    ):
        select_state_machine(two_jobs, "MyStack/Cubes")


def test_compute_settings_come_from_the_map_and_the_function_it_invokes(two_jobs) -> None:
    _, squares = select_state_machine(two_jobs, "MyStack/Squares")
    _, digits = select_state_machine(two_jobs, "MyStack/Digits")

    assert compute_settings(two_jobs, squares) == ComputeSettings(
        batch_size=50,
        max_concurrency=900,
        function="MyStack/Squares/Fn",
        memory_mb=1769,
        timeout_seconds=60.0,
        architecture="arm64",
    )
    # CloudFormation's defaults: 128 MB, 3 s, x86_64; no ItemBatcher is one item a child, no limit
    assert compute_settings(two_jobs, digits) == ComputeSettings(
        batch_size=1, max_concurrency=None, function="MyStack/DigitsFn"
    )
