"""Which Python runs a function: the declared runtime's version when this machine has it, else this one.

A Lambda function declares its runtime (``python3.13``); its local workers run on an interpreter of that
version when one is installed: on ``PATH`` as ``python3.13``, under pyenv (``$(pyenv root)/versions/3.13.*``)
or among uv's managed Pythons (``~/.local/share/uv/python/cpython-3.13*``). Each candidate is asked for its
version before it is used (a pyenv shim on ``PATH`` may exist and still fail), once per process. Without one,
the host's own interpreter runs the function, and the caller says so (see :func:`interpreter_for_runtime`).

"The host's interpreter" is the base interpreter of this process, never a virtual environment's wrapper:
a worker must not see the development venv's packages.
"""

from __future__ import annotations

import functools
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT_SECONDS = 10.0
_PROBE = "import platform, sys; print(sys.version_info[0], sys.version_info[1], platform.machine())"
_RUNTIME = re.compile(r"python(\d+)\.(\d+)")


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter on this machine."""

    path: Path
    version: tuple[int, int]
    machine: str
    """``x86_64`` or ``arm64`` (Lambda's names for the architectures)."""

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def runtime(self) -> str:
        """The Lambda runtime identifier of this version (``python3.13``)."""
        return f"python{self.version_text}"


def lambda_architecture(machine: str) -> str:
    """``platform.machine()`` in Lambda's words: ``aarch64`` is ``arm64``, ``AMD64`` is ``x86_64``."""
    lowered = machine.lower()
    if lowered in ("aarch64", "arm64"):
        return "arm64"
    if lowered in ("x86_64", "amd64"):
        return "x86_64"
    return lowered


def runtime_version(runtime: str) -> tuple[int, int] | None:
    """``python3.13`` -> (3, 13); None for anything that is not a Python runtime identifier."""
    match = _RUNTIME.fullmatch(runtime.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def host_interpreter() -> Interpreter:
    """The base interpreter of this process (outside any virtual environment)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    path = Path(base)
    if not path.is_file():  # a venv whose base was moved: this process's own interpreter still works
        path = Path(sys.executable)
    return Interpreter(
        path=path,
        version=(sys.version_info[0], sys.version_info[1]),
        machine=lambda_architecture(platform.machine()),
    )


@functools.cache
def find_interpreter(version: tuple[int, int]) -> Interpreter | None:
    """An interpreter of this version on this machine (the host's first), or None."""
    host = host_interpreter()
    if host.version == version:
        return host
    for candidate in _candidates(version):
        found = _probe(candidate)
        if found is not None and found.version == version:
            return found
    return None


def interpreter_for_runtime(runtime: str | None) -> tuple[Interpreter, str | None]:
    """The interpreter that runs a function of this runtime, and why it is not that version (or None).

    ``runtime`` None (no runtime declared) is the host's interpreter, with nothing to say.
    """
    host = host_interpreter()
    if runtime is None:
        return host, None
    version = runtime_version(runtime)
    if version is None:
        return host, f"its runtime {runtime!r} is not a Python runtime; it runs on Python {host.version_text}"
    found = find_interpreter(version)
    if found is not None:
        return found, None
    wanted = f"{version[0]}.{version[1]}"
    return host, (
        f"it declares {runtime}, but no Python {wanted} was found on this machine (looked on PATH for "
        f"python{wanted}, in pyenv and in uv's Pythons), so it runs on this Python {host.version_text} "
        f"({host.path}); install Python {wanted} (e.g. `pyenv install {wanted}` or `uv python install "
        f"{wanted}`) to run it on the version Lambda uses"
    )


def _candidates(version: tuple[int, int]) -> list[Path]:
    """Where an interpreter of this version may be, in the order they are tried."""
    wanted = f"{version[0]}.{version[1]}"
    found: list[Path] = []
    pyenv_root = _pyenv_root()
    on_path = shutil.which(f"python{wanted}")
    if on_path and Path(on_path).parent != pyenv_root / "shims":  # a shim: its versions are tried below
        found.append(Path(on_path))
    pyenv_versions = pyenv_root / "versions"
    found += [
        Path(directory) / "bin" / f"python{wanted}"
        for directory in _newest_first(glob.glob(str(pyenv_versions / f"{wanted}.*")))
        if re.fullmatch(rf"{re.escape(wanted)}\.\d+", Path(directory).name)  # not 3.13.0t, 3.13-dev
    ]
    found += [
        Path(directory) / "bin" / f"python{wanted}"
        for directory in _newest_first(glob.glob(str(_uv_python_dir() / f"cpython-{wanted}.*")))
        if "freethreaded" not in Path(directory).name and "+" not in Path(directory).name
    ]
    return [path for path in found if path.is_file()]


def _newest_first(directories: list[str]) -> list[str]:
    def patch_level(directory: str) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", Path(directory).name)
        return tuple(int(number) for number in numbers)

    return sorted(directories, key=patch_level, reverse=True)


def _pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv and Path(pyenv).resolve().parent.name == "libexec":  # <root>/bin/pyenv -> ../libexec/pyenv
        return Path(pyenv).resolve().parent.parent
    if pyenv:
        try:
            answer = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            answer = None
        if answer is not None and answer.returncode == 0 and answer.stdout.strip():
            return Path(answer.stdout.strip())
    return Path.home() / ".pyenv"


def _uv_python_dir() -> Path:
    if os.environ.get("UV_PYTHON_INSTALL_DIR"):
        return Path(os.environ["UV_PYTHON_INSTALL_DIR"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "uv" / "python"


def _probe(path: Path) -> Interpreter | None:
    """Ask an interpreter for its version and machine (None if it does not answer as a Python does)."""
    try:
        answer = subprocess.run(
            [str(path), "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = answer.stdout.split()
    if answer.returncode != 0 or len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return Interpreter(
        path=path, version=(int(parts[0]), int(parts[1])), machine=lambda_architecture(parts[2])
    )
