"""What the assembly says about a function's Lambda environment: runtime, architecture, layers, and whether
its construct bundles packages from its entry folder (PythonFunction, BurstmapFunction); the BurstmapLayer
when its bundling was skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from burstmap.client.local_app import function_spec
from burstmap.local.app.assembly import BURSTMAP_FUNCTION_METADATA, load_assembly
from burstmap.local.app.construct_tree import PYTHON_FUNCTION, construct_types


def _assembly(out: Path, resources: dict[str, Any], tree: dict[str, Any] | None = None) -> Path:
    (out / "asset.code").mkdir(parents=True)
    (out / "asset.code" / "requirements.txt").write_text("inflection==0.5.1\n")
    artifacts: dict[str, Any] = {
        "S": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "S.template.json"}}
    }
    if tree is not None:
        artifacts["Tree"] = {"type": "cdk:tree", "properties": {"file": "tree.json"}}
        (out / "tree.json").write_text(json.dumps({"version": "tree-0.1", "tree": tree}))
    (out / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    (out / "S.template.json").write_text(json.dumps({"Resources": resources}))
    return out


def _function(*, metadata: dict[str, Any] | None = None, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Metadata": {
            "aws:cdk:path": "S/Compute/Resource",
            "aws:asset:path": "asset.code",
            "aws:asset:is-bundled": False,
            "aws:asset:property": "Code",
            **(metadata or {}),
        },
        "Properties": {
            "Handler": "h.handler",
            "Runtime": "python3.13",
            "Code": {"S3Key": "x.zip"},
            **properties,
        },
    }


def _tree(compute_fqn: str) -> dict[str, Any]:
    return {
        "id": "App",
        "path": "",
        "constructInfo": {"fqn": "aws-cdk-lib.App"},
        "children": {
            "S": {
                "id": "S",
                "path": "S",
                "constructInfo": {"fqn": "aws-cdk-lib.Stack"},
                "children": {
                    "Compute": {
                        "id": "Compute",
                        "path": "S/Compute",
                        "constructInfo": {"fqn": compute_fqn},
                        "children": {
                            "Resource": {
                                "id": "Resource",
                                "path": "S/Compute/Resource",
                                "constructInfo": {"fqn": "aws-cdk-lib.aws_lambda.CfnFunction"},
                            }
                        },
                    }
                },
            }
        },
    }


def test_a_python_function_installs_its_entrys_requirements(tmp_path: Path) -> None:
    out = _assembly(tmp_path, {"F": _function(Architectures=["arm64"])}, _tree(PYTHON_FUNCTION))

    (fn,) = load_assembly(out).functions
    spec = function_spec(fn)

    assert (fn.bundling, fn.runtime, fn.architecture) == ("PythonFunction", "python3.13", "arm64")
    assert spec.bundled_requirements == fn.code_dir == (out / "asset.code").resolve()
    assert (spec.runtime, spec.architecture, spec.code_paths) == ("python3.13", "arm64", [fn.code_dir])


def test_a_burstmap_function_is_known_by_its_metadata(tmp_path: Path) -> None:
    out = _assembly(tmp_path, {"F": _function(metadata={BURSTMAP_FUNCTION_METADATA: "requirements.txt"})})

    (fn,) = load_assembly(out).functions

    assert fn.bundling == "BurstmapFunction"
    assert function_spec(fn).bundled_requirements == fn.code_dir


def test_a_plain_function_with_a_requirements_file_gets_nothing_installed(tmp_path: Path) -> None:
    out = _assembly(tmp_path, {"F": _function()}, _tree("aws-cdk-lib.aws_lambda.Function"))

    (fn,) = load_assembly(out).functions

    assert fn.bundling is None and fn.architecture == "x86_64"  # CloudFormation's default
    assert function_spec(fn).bundled_requirements is None  # as on AWS: the file is just a file


def test_a_python_function_whose_bundling_ran_installs_nothing_more(tmp_path: Path) -> None:
    function = _function(metadata={"aws:asset:is-bundled": True})
    out = _assembly(tmp_path, {"F": function}, _tree(PYTHON_FUNCTION))

    (fn,) = load_assembly(out).functions

    assert fn.bundling is None  # the asset is the bundling's output: its packages are in it


def test_a_function_whose_bundling_was_skipped_cannot_run_locally(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    function = _function(metadata={"aws:asset:is-bundled": True, "aws:asset:path": str(source)})
    out = _assembly(tmp_path / "out", {"F": function})

    app = load_assembly(out)

    assert app.functions == []
    (reason,) = app.skipped_functions.values()
    assert "built by CDK bundling, which a local synth skips" in reason and "not supported locally" in reason


def test_the_construct_tree_is_read_across_its_files(tmp_path: Path) -> None:
    tree = _tree(PYTHON_FUNCTION)
    stack = tree["children"]["S"]
    stack["children"] = {
        "Compute": {"id": "Compute", "path": "S/Compute", "fileName": "trees-1.json", "treeId": "t1"}
    }
    out = _assembly(tmp_path, {}, tree)
    (out / "trees-1.json").write_text(
        json.dumps(
            {
                "version": "forest-0.1",
                "forest": {
                    "t1": {"id": "Compute", "path": "S/Compute", "constructInfo": {"fqn": PYTHON_FUNCTION}}
                },
            }
        )
    )

    assert construct_types(out)["S/Compute"] == PYTHON_FUNCTION
