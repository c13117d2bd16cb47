"""BurstmapFunction: a Python Lambda function whose requirements are bundled by pip, without Docker.

``aws_lambda_python_alpha.PythonFunction`` installs a function's requirements inside a Docker container
of the Lambda build image. Most packages publish wheels for Lambda's platforms, and pip can fetch those
for another platform than the one it runs on::

    pip install -r requirements.txt --target OUT --platform manylinux2014_aarch64 \\
        --implementation cp --python-version 3.13 --only-binary=:all:

so BurstmapFunction runs exactly that at synth time (CDK local bundling), then copies the function's
sources next to the installed packages. A requirement without a wheel for the target (only a source
distribution, or native code not built for that architecture) fails the synth with a message that says
so: such a function needs PythonFunction (and Docker).

The CloudFormation function carries the metadata ``"burstmap:dependencies": "requirements.txt"``: the
local engine, which synthesizes with bundling skipped (the asset is then the entry folder itself),
installs those requirements for the machine it runs on, as it does for a PythonFunction.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from burstmap.cdk.props import DEFAULT_ARCHITECTURE, DEFAULT_RUNTIME

#: The CloudFormation Metadata key naming the requirements file the local engine installs.
DEPENDENCIES_METADATA_KEY = "burstmap:dependencies"
REQUIREMENTS_FILE = "requirements.txt"
#: Dependency files PythonFunction reads that BurstmapFunction does not, and how to export each.
OTHER_DEPENDENCY_FILES = {
    "poetry.lock": "poetry export -f requirements.txt -o requirements.txt",
    "uv.lock": "uv export --format requirements-txt -o requirements.txt",
    "Pipfile.lock": "pipenv requirements > requirements.txt",
    "Pipfile": "pipenv requirements > requirements.txt",
}
#: pip's machine name per Lambda architecture.
PIP_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
#: Python runtimes on Amazon Linux 2 (glibc 2.26); later ones run on Amazon Linux 2023 (glibc 2.34).
AMAZON_LINUX_2_PYTHONS = ("3.8", "3.9", "3.10", "3.11")


def pip_platforms(architecture: str, python_version: str) -> list[str]:
    """The wheel platforms a Lambda runtime takes: manylinux2014 (glibc 2.17) everywhere, and on Amazon
    Linux 2023 the newer manylinux_2_28 and _2_34 too (some packages publish only those)."""
    machine = PIP_MACHINES[architecture]
    platforms = [f"manylinux2014_{machine}"]
    if python_version not in AMAZON_LINUX_2_PYTHONS:
        platforms += [f"manylinux_2_28_{machine}", f"manylinux_2_34_{machine}"]
    return platforms


#: Never copied into the function (nor hashed): bytecode, environments, VCS and tool caches.
SOURCE_EXCLUDES = (
    "__pycache__",
    "*.pyc",
    ".venv",
    "venv",
    ".git",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
)


class BurstmapFunctionError(ValueError):
    """The function cannot be built as given; the message says what to change."""


def pip_install_command(
    requirements: Path, target: Path, *, platforms: Sequence[str], python_version: str
) -> list[str]:
    """The pip command that installs ``requirements`` for the Lambda target into ``target``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        *(option for platform in platforms for option in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--no-compile",  # .pyc files would carry this machine's timestamps into the asset
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]


@jsii.implements(cdk.ILocalBundling)
class _PipBundling:
    """Local bundling: target-platform wheels for the requirements, then the function's sources."""

    def __init__(
        self, entry: Path, *, platforms: Sequence[str], python_version: str, exclude: Sequence[str]
    ) -> None:
        self._entry = entry
        self._platforms = tuple(platforms)
        self._python_version = python_version
        self._exclude = tuple(exclude)

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:  # noqa: ARG002 (jsii signature)
        output = Path(output_dir)
        requirements = self._entry / REQUIREMENTS_FILE
        if requirements.is_file():
            command = pip_install_command(
                requirements, output, platforms=self._platforms, python_version=self._python_version
            )
            done = subprocess.run(command, cwd=self._entry, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BurstmapFunctionError(self._no_wheels(requirements, done.stderr or done.stdout))
        shutil.copytree(
            self._entry,
            output,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(*SOURCE_EXCLUDES, *self._exclude),
        )
        return True

    def _no_wheels(self, requirements: Path, output: str) -> str:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        said = next(
            (line for line in lines if line.startswith("ERROR:")), lines[-1] if lines else "no output"
        )
        target = f"{self._platforms[0].split('_', 1)[1]}, CPython {self._python_version}"
        return (
            f"BurstmapFunction could not install {requirements} for Lambda ({target}) with pip, which takes "
            f"only wheels built for that platform ({', '.join(self._platforms)}): {said}. "
            "A requirement published without such a wheel must be built on Linux: use "
            "aws_lambda_python_alpha.PythonFunction for this function, which bundles in Docker "
            "(README, Packaging without Docker)"
        )


class BurstmapFunction(lambda_.Function):
    """A Python function from a folder with a requirements.txt, bundled for Lambda by pip (no Docker).

    ``entry`` is the folder holding the handler module and, if it has third-party requirements, a
    requirements.txt; ``index`` the module file (``"index.py"``, or ``"pkg/handler.py"``), ``handler`` the
    function in it. ``runtime`` and ``architecture`` (default: Python 3.13 on arm64, burstmap's own) pick
    the wheels pip installs. Every other ``aws_lambda.Function`` prop passes through (``layers``,
    ``memory_size``, ``timeout``, ``environment``...); ``exclude`` adds glob patterns of files to leave
    out of the asset.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entry: str,
        index: str = "index.py",
        handler: str = "handler",
        runtime: lambda_.Runtime = DEFAULT_RUNTIME,
        architecture: lambda_.Architecture = DEFAULT_ARCHITECTURE,
        exclude: Sequence[str] = (),
        **function_props: Any,
    ) -> None:
        source = Path(entry).resolve()
        python_version = _check(source, index, handler, runtime, architecture)
        platforms = pip_platforms(architecture.name, python_version)
        requirements = source / REQUIREMENTS_FILE
        docker_equivalent = " ".join(
            shlex.quote(part)
            for part in pip_install_command(
                Path(REQUIREMENTS_FILE),
                Path("/asset-output"),
                platforms=platforms,
                python_version=python_version,
            )[1:]
        )
        code = lambda_.Code.from_asset(
            str(source),
            exclude=[*SOURCE_EXCLUDES, *exclude],
            bundling=cdk.BundlingOptions(
                # Never run: the local bundling below always succeeds or fails the synth. It says what that
                # bundling does (and is part of the asset hash, so a new target bundles again).
                image=runtime.bundling_image,
                command=["bash", "-c", f"python {docker_equivalent} && cp -au . /asset-output"],
                local=_PipBundling(
                    source, platforms=platforms, python_version=python_version, exclude=exclude
                ),
            ),
        )
        module = index.removesuffix(".py").replace("/", ".")
        super().__init__(
            scope,
            construct_id,
            code=code,
            handler=f"{module}.{handler}",
            runtime=runtime,
            architecture=architecture,
            **function_props,
        )
        if requirements.is_file():
            resource = self.node.default_child
            assert isinstance(resource, cdk.CfnResource)
            resource.add_metadata(DEPENDENCIES_METADATA_KEY, REQUIREMENTS_FILE)


def _check(
    source: Path, index: str, handler: str, runtime: lambda_.Runtime, architecture: lambda_.Architecture
) -> str:
    """The Python version of ``runtime`` ("3.13"); BurstmapFunctionError for anything that cannot build."""
    where = f"BurstmapFunction entry {source}"
    if not source.is_dir():
        raise BurstmapFunctionError(f"{where} is not a folder: point entry at the folder of the handler")
    if not index.endswith(".py") or not (source / index).is_file():
        raise BurstmapFunctionError(
            f"{where} has no {index}: index is the handler's module file, like 'index.py'"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", handler):
        raise BurstmapFunctionError(
            f"handler must be a function name in {index}, like 'handler'; got {handler!r}"
        )
    version = re.fullmatch(r"python(3\.\d+)", runtime.name)
    if version is None:
        raise BurstmapFunctionError(f"BurstmapFunction runs Python runtimes only, got {runtime.name}")
    if architecture.name not in PIP_MACHINES:
        raise BurstmapFunctionError(
            f"BurstmapFunction knows architectures arm64 and x86_64, got {architecture.name}"
        )
    if not (source / REQUIREMENTS_FILE).is_file():
        for name, export in OTHER_DEPENDENCY_FILES.items():
            if (source / name).is_file():
                raise BurstmapFunctionError(
                    f"{where} has {name} but no {REQUIREMENTS_FILE}: BurstmapFunction installs "
                    f"{REQUIREMENTS_FILE} only; export one ({export}) or use PythonFunction"
                )
    return version.group(1)
