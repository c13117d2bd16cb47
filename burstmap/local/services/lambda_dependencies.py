"""A function's third-party packages, installed as its bundling would install them, without Docker.

A ``PythonFunction`` (aws-lambda-python-alpha) or a ``BurstmapFunction`` bundles the packages its entry
folder's dependency file names into the function's asset. A local run skips CDK's bundling, so the asset
is the entry folder itself; this module installs those packages instead, for this machine, with the
interpreter that runs the function (``python -m pip install -r requirements.txt --target DIR``), once:
the result is cached under a key made of the dependency file, the interpreter's version and the platform,
and a file lock makes concurrent runs wait for one install.

The dependency file is the one PythonFunction picks, in its order: ``Pipfile.lock``, ``poetry.lock``,
``requirements.txt``, ``uv.lock``. The lock files are exported to a requirements list with their tool
(``pipenv requirements``, ``poetry export``, ``uv export``, as PythonFunction's bundling runs them), which
must then be on ``PATH``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from burstmap.local.core.file_lock import locked
from burstmap.local.services.lambda_errors import LambdaConfigurationError
from burstmap.local.services.python_interpreters import Interpreter

DEPENDENCY_FILES = ("Pipfile.lock", "poetry.lock", "requirements.txt", "uv.lock")
"""The files PythonFunction reads, in the order it looks for them (aws-lambda-python-alpha packaging.ts)."""
INSTALL_TIMEOUT_SECONDS = 20 * 60
CACHE_ENV = "BURSTMAP_CACHE_DIR"
LOGGER = logging.getLogger("burstmap.local.lambda")

_EXPORTS: dict[str, list[str]] = {
    "Pipfile.lock": ["pipenv", "requirements"],
    "poetry.lock": [
        "poetry",
        "export",
        "--without-hashes",
        "--with-credentials",
        "--format",
        "requirements.txt",
    ],
    "uv.lock": ["uv", "export", "--frozen", "--no-emit-workspace", "--no-dev", "--no-editable"],
}


def cache_root() -> Path:
    """Where burstmap keeps what it builds for local runs: ``$BURSTMAP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/burstmap``, else ``~/.cache/burstmap``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "burstmap"


def dependency_file(folder: Path) -> Path | None:
    """The dependency file PythonFunction would install from this entry folder (None: no packages)."""
    for name in DEPENDENCY_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def installed_dependencies(function: str, folder: Path, interpreter: Interpreter) -> Path | None:
    """The folder holding the packages of ``folder``'s dependency file, installed for ``interpreter``
    (installed now unless cached); None when the folder has no dependency file.

    LambdaConfigurationError, naming the function and the file, when the install or the export fails.
    """
    source = dependency_file(folder)
    if source is None:
        return None
    key = _cache_key(source, interpreter)
    cache = cache_root() / "dependencies"
    target = cache / key
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / f"{key}.lock"):
        if target.is_dir():  # another run installed it while this one waited
            return target
        LOGGER.info(
            "function %s: installing the packages of %s for Python %s into %s (once; then cached)",
            function,
            source,
            interpreter.version_text,
            target,
        )
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".partial", dir=cache))
        try:
            requirements = _requirements_file(function, source, staging)
            _pip_install(
                function, source, requirements, interpreter, staging / "packages", cache / f"{key}.log"
            )
            os.rename(staging / "packages", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _cache_key(source: Path, interpreter: Interpreter) -> str:
    digest = hashlib.sha256()
    for part in (source.name, interpreter.version_text, sys.platform, interpreter.machine):
        digest.update(part.encode() + b"\0")
    digest.update(source.read_bytes())
    return digest.hexdigest()[:32]


def _requirements_file(function: str, source: Path, staging: Path) -> Path:
    """requirements.txt itself, or the lock file exported to one (in ``staging``) by its tool."""
    if source.name == "requirements.txt":
        return source
    command = _EXPORTS[source.name]
    if shutil.which(command[0]) is None:
        raise LambdaConfigurationError(
            f"function {function}: its entry folder {source.parent} has a {source.name}, which "
            f"PythonFunction turns into a requirements list with `{command[0]}`; {command[0]} is not on "
            "PATH here, so its "
            f"packages cannot be installed: install {command[0]}, or add a requirements.txt "
            f"(`{' '.join(command)} > requirements.txt`)"
        )
    exported = staging / "requirements.txt"
    try:
        with exported.open("w") as out:
            done = subprocess.run(
                command,
                cwd=source.parent,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LambdaConfigurationError(
            f"function {function}: `{' '.join(command)}` in {source.parent} failed: {error}"
        ) from error
    if done.returncode != 0:
        raise LambdaConfigurationError(
            f"function {function}: `{' '.join(command)}` in {source.parent} failed (exit {done.returncode}): "
            f"{_last_line(done.stderr)}"
        )
    return exported


def _pip_install(
    function: str, source: Path, requirements: Path, interpreter: Interpreter, target: Path, log: Path
) -> None:
    command = [
        str(interpreter.path),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "-r",
        str(requirements),
        "--target",
        str(target),
    ]
    try:
        done = subprocess.run(
            command,
            cwd=source.parent,  # relative paths in the requirements are relative to the entry folder
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LambdaConfigurationError(
            f"function {function}: installing the packages of {source} with {interpreter.path} failed: "
            f"{error}"
        ) from error
    if done.returncode == 0:
        return
    log.write_text(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
    if "No module named pip" in done.stderr:
        raise LambdaConfigurationError(
            f"function {function}: Python {interpreter.version_text} ({interpreter.path}) has no pip to "
            f"install the packages of {source}: run `{interpreter.path} -m ensurepip`"
        )
    raise LambdaConfigurationError(
        f"function {function}: installing the packages of {source} with Python {interpreter.version_text} "
        f"failed (pip exit {done.returncode}): {_last_line(done.stderr or done.stdout)} -- fix the file and "
        f"retry; pip's full output is in {log}"
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
