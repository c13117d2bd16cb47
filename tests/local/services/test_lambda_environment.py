"""What a worker's handler sees: Lambda's import path, Lambda's environment variables, the declared
Python version, and an unbundled import failing as on Lambda, with one hint."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burstmap.local.services import lambda_environment
from burstmap.local.services.lambda_environment import RESERVED_VARIABLES
from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaConfigurationError, LambdaRuntime
from burstmap.local.services.python_interpreters import (
    find_interpreter,
    host_interpreter,
    lambda_architecture,
)

HANDLERS = """
import os, sys


def path(event, context):
    return sys.path


def environment(event, context):
    return dict(os.environ)


def version(event, context):
    return {"version": list(sys.version_info[:2]), "executable": sys.executable}


def child_python(event, context):
    import subprocess
    command = [sys.executable, "-c", "import boto3, sys; print(boto3.__file__)"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def imports(event, context):
    found = {}
    for name in event["modules"]:
        try:
            module = __import__(name)
        except ImportError as error:
            found[name] = f"ImportError: {error}"
        else:
            found[name] = getattr(module, "__file__", None) or "namespace"
    return found
"""


@pytest.fixture()
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return folder


@pytest.fixture()
def notices() -> list[str]:
    return []


@pytest.fixture()
def runtime_for(notices: list[str]) -> Iterator[Any]:
    runtimes: list[LambdaRuntime] = []

    def make(*specs: FunctionSpec, **kwargs: Any) -> LambdaRuntime:
        runtime = LambdaRuntime(specs, on_notice=notices.append, **kwargs)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


def call(runtime: LambdaRuntime, function: str, event: Any = None) -> Any:
    invocation = runtime.invoke(function, json.dumps(event or {}).encode())
    assert invocation.function_error is None, invocation.payload
    return json.loads(invocation.payload)


def layer(root: Path, runtime: str, module: str, value: str, *, site_packages: bool = False) -> Path:
    """A layer folder holding ``module`` (a one-line module saying ``value``) in python/ or site-packages."""
    folder = root / "python" / "lib" / runtime / "site-packages" if site_packages else root / "python"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(f"VALUE = {value!r}\n")
    return root


# ------------------------------------------------------------------------------------------- import path


def test_the_import_path_is_the_code_then_the_layers_then_the_runtime_packages_then_the_standard_library(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    runtime_id = host_interpreter().runtime
    first = layer(tmp_path / "first", runtime_id, "shared", "first")
    second = layer(tmp_path / "second", runtime_id, "shared", "second")
    layer(second, runtime_id, "deep", "site", site_packages=True)
    spec = FunctionSpec("f", "handlers.path", [code], layers=[first, second])
    runtime = runtime_for(spec)

    path = call(runtime, "f")

    runtime_packages = Path(path[5])
    assert path[:6] == [
        str(code),
        str(second / "python" / "lib" / runtime_id / "site-packages"),  # a later layer overwrites an earlier
        str(first / "python" / "lib" / runtime_id / "site-packages"),
        str(second / "python"),
        str(first / "python"),
        str(runtime_packages),
    ]
    assert runtime_packages.parent.name == "lambda-runtime"
    links = [entry.name for entry in runtime_packages.iterdir() if entry.is_symlink()]
    assert sorted(name for name in links if not name.endswith(".dist-info")) == [
        "boto3",
        "botocore",
        "dateutil",
        "jmespath",
        "s3transfer",
        "six.py",
        "urllib3",
    ]
    rest = path[6:]
    # The bootstrap's site.addsitedir appends a layer folder that does not exist again at the end, as on
    # Lambda; everything else is the interpreter's standard library, nothing of this environment.
    standard_library = [entry for entry in rest if entry not in path[:6]]
    assert standard_library and all(not entry.startswith(sys.prefix) for entry in standard_library)
    assert not any("site-packages" in entry for entry in standard_library)


def test_a_handler_imports_the_runtime_packages_and_the_layers_but_nothing_else_of_this_environment(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    runtime_id = host_interpreter().runtime
    first = layer(tmp_path / "first", runtime_id, "shared", "first")
    second = layer(tmp_path / "second", runtime_id, "shared", "second")
    runtime = runtime_for(FunctionSpec("f", "handlers.imports", [code], layers=[first, second]))

    found = call(
        runtime, "f", {"modules": ["shared", "boto3", "dateutil", "six", "pytest", "moto", "burstmap"]}
    )

    assert found["shared"] == str(second / "python" / "shared.py")
    for name in ("boto3", "dateutil", "six"):
        assert "lambda-runtime" in found[name], found[name]
    assert found["pytest"] == "ImportError: No module named 'pytest'"  # installed here, not on Lambda
    assert found["moto"] == "ImportError: No module named 'moto'"
    assert found["burstmap"] == "ImportError: No module named 'burstmap'"  # only through the BurstmapLayer


def test_a_python_the_handler_starts_imports_the_runtime_packages_too(code: Path, runtime_for: Any) -> None:
    """As on Lambda, where PYTHONPATH is the runtime's folder: a subprocess of the handler finds boto3."""
    runtime = runtime_for(FunctionSpec("f", "handlers.child_python", [code]))

    assert "lambda-runtime" in call(runtime, "f")


def test_an_unbundled_import_fails_like_lambda_with_one_hint_per_function(
    code: Path, runtime_for: Any, notices: list[str]
) -> None:
    (code / "needs_pytest.py").write_text("import pytest\n\ndef handler(event, context):\n    return 1\n")
    runtime = runtime_for(FunctionSpec("f", "needs_pytest.handler", [code], timeout_seconds=10), workers=2)

    answers = [json.loads(runtime.invoke("f", b"{}").payload) for _ in range(3)]

    assert (
        answers
        == [
            {
                "errorMessage": "Unable to import module 'needs_pytest': No module named 'pytest'",
                "errorType": "Runtime.ImportModuleError",
                "requestId": "",
                "stackTrace": [],
            }
        ]
        * 3
    )
    (hint,) = notices  # one, however many workers failed their init
    assert hint.startswith("function f: Unable to import module 'needs_pytest': No module named 'pytest'")
    assert "pytest is installed in this development environment" in hint
    assert "PythonFunction" in hint and "BurstmapFunction" in hint and "requirements.txt" in hint


def test_a_missing_burstmap_points_at_the_burstmap_layer(
    code: Path, runtime_for: Any, notices: list[str]
) -> None:
    (code / "uses_burstmap.py").write_text("from burstmap.compute import compute_handler\n")
    runtime = runtime_for(FunctionSpec("f", "uses_burstmap.handler", [code]))

    assert json.loads(runtime.invoke("f", b"{}").payload)["errorType"] == "Runtime.ImportModuleError"
    (hint,) = notices
    assert "BurstmapLayer.of(stack)" in hint


def test_pth_files_of_the_code_folder_are_read_as_the_runtime_bootstrap_does(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "from_pth.py").write_text("VALUE = 1\n")
    (code / "paths.pth").write_text(f"{extra}\n")
    runtime = runtime_for(FunctionSpec("f", "handlers.imports", [code]))

    assert call(runtime, "f", {"modules": ["from_pth"]}) == {"from_pth": str(extra / "from_pth.py")}


# ----------------------------------------------------------------------------------------- environment


def test_the_environment_is_lambdas_and_the_functions_and_nothing_of_this_process(
    code: Path, tmp_path: Path, runtime_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONLY_ON_THE_HOST", "leak")
    layer_root = tmp_path / "layer"
    layer_root.mkdir()
    spec = FunctionSpec(
        "fn",
        "handlers.environment",
        [code],
        environment={"MINE": "1", "TZ": "Europe/Paris"},
        memory_mb=256,
        runtime=host_interpreter().runtime,
        layers=[layer_root],
    )
    runtime = runtime_for(
        spec, extra_env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "k"}
    )

    env = call(runtime, "fn")

    interpreter = host_interpreter()
    runtime_dir = env["LAMBDA_RUNTIME_DIR"]
    assert set(env) == {
        "_HANDLER",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "LANG",
        "PATH",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "TZ",
        "MINE",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_ACCESS_KEY",
    }
    assert env["_HANDLER"] == "handlers.environment"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{interpreter.runtime}"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn"
    assert env["LAMBDA_TASK_ROOT"] == str(code)
    assert env["PYTHONPATH"] == runtime_dir  # as the runtime's bootstrap leaves it
    assert env["LANG"] == "en_US.UTF-8"
    assert env["TZ"] == "Europe/Paris"  # TZ is not reserved: the function's value wins
    assert env["PATH"].split(":") == [str(interpreter.path.parent), "/usr/local/bin", "/usr/bin", "/bin"] + [
        str(layer_root / "bin")
    ]
    library_path = env["LD_LIBRARY_PATH"].split(":")
    assert library_path[-3:] == [str(code), str(code / "lib"), str(layer_root / "lib")]
    assert env["AWS_ACCESS_KEY"] == env["AWS_ACCESS_KEY_ID"] == "k"


def test_the_default_time_zone_is_utc(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(FunctionSpec("f", "handlers.environment", [code]))

    assert call(runtime, "f")["TZ"] == ":UTC"


def test_a_reserved_variable_in_the_functions_environment_is_refused(code: Path) -> None:
    assert "AWS_REGION" in RESERVED_VARIABLES
    with pytest.raises(
        LambdaConfigurationError, match=r"function f: .*AWS_REGION, LAMBDA_TASK_ROOT.*reserve"
    ):
        LambdaRuntime(
            [
                FunctionSpec(
                    "f", "handlers.path", [code], environment={"LAMBDA_TASK_ROOT": "x", "AWS_REGION": "y"}
                )
            ]
        )


# -------------------------------------------------------------------------------------- Python version


def test_a_function_runs_on_its_declared_python_when_this_machine_has_it(
    code: Path, runtime_for: Any, notices: list[str]
) -> None:
    other = next(
        (
            found
            for minor in (13, 12, 11, 10)
            if (found := find_interpreter((3, minor))) is not None
            and found.version != host_interpreter().version
        ),
        None,
    )
    if other is None:
        pytest.skip("no Python other than the host's is installed")
    runtime = runtime_for(FunctionSpec("f", "handlers.version", [code], runtime=other.runtime))

    answer = call(runtime, "f")

    assert tuple(answer["version"]) == other.version
    assert answer["executable"] == str(other.path)
    assert notices == []


def test_without_the_declared_python_the_host_runs_it_with_one_warning(
    code: Path, runtime_for: Any, notices: list[str]
) -> None:
    runtime = runtime_for(FunctionSpec("f", "handlers.version", [code], runtime="python3.99"), workers=2)

    answers = [call(runtime, "f") for _ in range(3)]

    host = host_interpreter()
    assert {tuple(answer["version"]) for answer in answers} == {host.version}
    (warning,) = notices
    assert warning.startswith("function f: it declares python3.99, but no Python 3.99 was found")
    assert f"this Python {host.version_text}" in warning


def test_a_python_older_than_this_environments_boto3_supports_runs_on_the_host(
    code: Path, runtime_for: Any, notices: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime's packages are this environment's boto3: an interpreter it does not support cannot
    import it, so the function runs on the host's Python instead, and says why."""
    other = next(
        (
            found
            for minor in (10, 12, 13)
            if (found := find_interpreter((3, minor))) is not None
            and found.version != host_interpreter().version
        ),
        None,
    )
    if other is None:
        pytest.skip("no Python other than the host's is installed")
    monkeypatch.setattr(
        lambda_environment, "runtime_minimum_python", lambda: (other.version[0], other.version[1] + 1)
    )
    runtime = runtime_for(FunctionSpec("f", "handlers.version", [code], runtime=other.runtime))

    assert tuple(call(runtime, "f")["version"]) == host_interpreter().version
    (warning,) = notices
    assert warning.startswith(f"function f: it declares {other.runtime}, but the boto3 of this environment")


@pytest.mark.parametrize("native", [True, False])
def test_native_code_for_another_architecture_is_pointed_out_once(
    code: Path, runtime_for: Any, notices: list[str], native: bool
) -> None:
    if native:
        (code / "fast.cpython-313-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    other = "arm64" if lambda_architecture(os.uname().machine) == "x86_64" else "x86_64"
    runtime_for(FunctionSpec("f", "handlers.path", [code], architecture=other))

    if native:
        (warning,) = notices
        assert f"declared {other} but bundles native code" in warning and "fast.cpython" in warning
    else:
        assert notices == []
