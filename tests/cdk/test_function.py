"""BurstmapFunction: requirements bundled by pip for Lambda's platform (no Docker), the metadata that tells
the local engine to install them, and a clear refusal when a requirement has no wheel for the target.

The bundling tests reach PyPI (through pip and its cache): msgpack has native wheels for both Lambda
architectures, mpmath is pure Python, docopt publishes no wheel at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_support import SKIP_BUNDLING, fast_app, template_of

from burstmap import BurstmapFunction
from burstmap.cdk.function import DEPENDENCIES_METADATA_KEY, BurstmapFunctionError

#: What the CDK CLI (and a local run) adds: each asset's folder in its resource's metadata.
ASSET_METADATA = {"aws:cdk:enable-asset-metadata": True}
HANDLER = "import msgpack\n\n\ndef on_event(event, context):\n    return len(msgpack.packb(event))\n"


def entry(root: Path, requirements: str | None = "msgpack==1.2.4\nmpmath==1.3.0\n", **files: str) -> Path:
    folder = root / "fn"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "main.py").write_text(HANDLER)
    (folder / "pkg" / "__pycache__").mkdir()
    (folder / "pkg" / "__pycache__" / "main.cpython-313.pyc").write_text("bytecode")
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def function_resource(stack: cdk.Stack) -> dict[str, Any]:
    (resource,) = [
        r for r in template_of(stack)["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    return resource


def test_the_function_says_its_requirements_for_the_local_engine(tmp_path: Path) -> None:
    """Synthesized as a local run does (bundling skipped): the asset is the entry folder itself."""
    folder = entry(tmp_path)
    stack = cdk.Stack(fast_app({**SKIP_BUNDLING, **ASSET_METADATA}), "S")
    BurstmapFunction(stack, "Fn", entry=str(folder), index="pkg/main.py", handler="on_event", memory_size=256)

    resource = function_resource(stack)
    properties = resource["Properties"]
    assert resource["Metadata"][DEPENDENCIES_METADATA_KEY] == "requirements.txt"
    assert (properties["Handler"], properties["Runtime"], properties["Architectures"]) == (
        "pkg.main.on_event",
        "python3.13",
        ["arm64"],
    )
    assert properties["MemorySize"] == 256  # any Function prop passes through
    assert resource["Metadata"]["aws:asset:path"] == str(folder)


def test_without_requirements_there_is_no_metadata(tmp_path: Path) -> None:
    stack = cdk.Stack(fast_app(SKIP_BUNDLING), "S")
    BurstmapFunction(stack, "Fn", entry=str(entry(tmp_path, requirements=None)), index="pkg/main.py")
    assert DEPENDENCIES_METADATA_KEY not in function_resource(stack).get("Metadata", {})


@pytest.mark.parametrize(
    ("kwargs", "files", "message"),
    [
        ({"entry": "missing"}, {}, "is not a folder"),
        ({"index": "handler.py"}, {}, "has no handler.py: index is the handler's module file"),
        ({"handler": "on-event"}, {}, "handler must be a function name in pkg/main.py"),
        ({"runtime": lambda_.Runtime.NODEJS_20_X}, {}, "runs Python runtimes only, got nodejs20.x"),
        ({}, {"poetry.lock": ""}, "has poetry.lock but no requirements.txt: .*poetry export"),
        ({}, {"uv.lock": ""}, "has uv.lock but no requirements.txt: .*uv export"),
    ],
)
def test_what_cannot_build_is_refused_with_what_to_change(
    tmp_path: Path, kwargs: dict[str, Any], files: dict[str, str], message: str
) -> None:
    folder = entry(tmp_path, requirements=None if files else "mpmath\n", **files)
    stack = cdk.Stack(fast_app(SKIP_BUNDLING), "S")
    arguments = {"entry": str(folder), "index": "pkg/main.py", **kwargs}
    if kwargs.get("entry") == "missing":
        arguments["entry"] = str(tmp_path / "missing")
    with pytest.raises(BurstmapFunctionError, match=message):
        BurstmapFunction(stack, "Fn", **arguments)


# ------------------------------------------------------------------------------------------ bundling (PyPI)


def bundled(tmp_path: Path, folder: Path, architecture: lambda_.Architecture) -> tuple[Path, str]:
    """Synthesize as ``cdk synth`` does (bundling on): the asset folder and its S3 key."""
    app = cdk.App(outdir=str(tmp_path / f"cdk.out-{architecture.name}"), context=ASSET_METADATA)
    stack = cdk.Stack(app, "S")
    BurstmapFunction(
        stack, "Fn", entry=str(folder), index="pkg/main.py", handler="on_event", architecture=architecture
    )
    assembly = app.synth()
    resource = function_resource(stack)
    asset = Path(assembly.directory) / resource["Metadata"]["aws:asset:path"]
    return asset, resource["Properties"]["Code"]["S3Key"]


def files_in(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "machine"),
    [(lambda_.Architecture.ARM_64, "aarch64"), (lambda_.Architecture.X86_64, "x86_64")],
    ids=["arm64", "x86_64"],
)
def test_the_asset_holds_the_target_platforms_wheels_and_the_sources(
    tmp_path: Path, architecture: lambda_.Architecture, machine: str
) -> None:
    asset, _ = bundled(tmp_path, entry(tmp_path), architecture)

    shipped = files_in(asset)
    assert f"msgpack/_cmsgpack.cpython-313-{machine}-linux-gnu.so" in shipped  # native, for the target
    assert "mpmath/__init__.py" in shipped  # pure Python
    wheel_tags = (asset / "msgpack-1.2.4.dist-info" / "WHEEL").read_text()
    assert f"Tag: cp313-cp313-manylinux2014_{machine}" in wheel_tags
    assert {"pkg/main.py", "requirements.txt"} <= shipped
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in shipped)


@pytest.mark.slow
def test_the_asset_hash_follows_the_sources_and_the_target(tmp_path: Path) -> None:
    folder = entry(tmp_path)
    _, arm = bundled(tmp_path / "a", folder, lambda_.Architecture.ARM_64)
    _, arm_again = bundled(tmp_path / "b", folder, lambda_.Architecture.ARM_64)
    _, x86 = bundled(tmp_path / "c", folder, lambda_.Architecture.X86_64)
    (folder / "pkg" / "main.py").write_text(HANDLER + "# edited\n")
    _, edited = bundled(tmp_path / "d", folder, lambda_.Architecture.ARM_64)

    assert arm == arm_again
    assert len({arm, x86, edited}) == 3


@pytest.mark.slow
def test_a_requirement_without_a_wheel_fails_the_synth_and_names_docker_bundling(tmp_path: Path) -> None:
    folder = entry(tmp_path, requirements="docopt==0.6.2\n")  # published as a source distribution only
    with pytest.raises(Exception) as raised:  # noqa: PT011 - jsii wraps it in its own RuntimeError
        bundled(tmp_path, folder, lambda_.Architecture.ARM_64)

    message = str(raised.value)
    assert f"BurstmapFunction could not install {folder / 'requirements.txt'} for Lambda" in message
    assert "(aarch64, CPython 3.13) with pip" in message and "manylinux_2_34_aarch64" in message
    assert "docopt" in message
    assert "use aws_lambda_python_alpha.PythonFunction for this function, which bundles in Docker" in message


def test_the_metadata_key_is_what_the_readme_documents() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert json.dumps({DEPENDENCIES_METADATA_KEY: "requirements.txt"})[1:-1] in readme
