"""A bundling function's packages, installed for the local run as its bundling would: which file, once into
a cache, with clear errors; and a worker importing them right after its code."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from burstmap.local.services import lambda_dependencies
from burstmap.local.services.lambda_dependencies import dependency_file, installed_dependencies
from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaConfigurationError, LambdaRuntime
from burstmap.local.services.python_interpreters import Interpreter, host_interpreter


def tiny_wheel(folder: Path, version: str = "1.0") -> Path:
    """A pure-Python wheel of one module, ``tinypkg`` (VERSION = version), made by hand: no index needed."""
    wheel = folder / f"tinypkg-{version}-py3-none-any.whl"
    info = f"tinypkg-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tinypkg.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(
            f"{info}/RECORD", f"tinypkg.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n"
        )
    return wheel


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BURSTMAP_CACHE_DIR", str(folder))
    return folder


@pytest.fixture()
def entry(tmp_path: Path) -> Path:
    """A PythonFunction entry folder: a handler and a requirements.txt naming a local wheel."""
    folder = tmp_path / "entry"
    folder.mkdir()
    wheel = tiny_wheel(folder)
    (folder / "requirements.txt").write_text(f"--no-index\n./{wheel.name}\n")
    (folder / "app.py").write_text(
        "import sys, tinypkg\n\ndef handler(event, context):\n    return [tinypkg.VERSION, sys.path[:2]]\n"
    )
    return folder


def test_the_dependency_file_is_the_one_python_function_picks(tmp_path: Path) -> None:
    assert dependency_file(tmp_path) is None
    for name in ("uv.lock", "requirements.txt", "poetry.lock", "Pipfile.lock"):  # each takes precedence
        (tmp_path / name).write_text("")
        assert dependency_file(tmp_path) == tmp_path / name


def test_requirements_are_installed_once_into_the_cache(
    entry: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpreter = host_interpreter()

    installed = installed_dependencies("f", entry, interpreter)

    assert installed is not None and installed.parent == cache / "dependencies"
    assert (installed / "tinypkg.py").read_text() == "VERSION = '1.0'\n"

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip ran again")

    monkeypatch.setattr(lambda_dependencies, "_pip_install", no_pip)
    assert installed_dependencies("f", entry, interpreter) == installed


def test_a_changed_file_or_another_python_installs_anew(entry: Path, cache: Path) -> None:
    interpreter = host_interpreter()
    first = installed_dependencies("f", entry, interpreter)

    other_python = Interpreter(
        interpreter.path, (interpreter.version[0], interpreter.version[1] + 1), "x86_64"
    )
    wheel = tiny_wheel(entry, "2.0")
    (entry / "requirements.txt").write_text(f"--no-index\n./{wheel.name}\n")
    second = installed_dependencies("f", entry, interpreter)

    assert (
        second is not None and second != first and (second / "tinypkg.py").read_text() == "VERSION = '2.0'\n"
    )
    assert lambda_dependencies._cache_key(entry / "requirements.txt", other_python) != second.name


def test_concurrent_runs_install_once(entry: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installs: list[int] = []
    real = lambda_dependencies._pip_install

    def counted(*args: Any) -> None:
        installs.append(1)
        real(*args)

    monkeypatch.setattr(lambda_dependencies, "_pip_install", counted)
    found: list[Path | None] = []
    threads = [
        threading.Thread(target=lambda: found.append(installed_dependencies("f", entry, host_interpreter())))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(installs) == 1 and len(set(found)) == 1 and found[0] is not None


def test_a_lock_file_needs_its_tool(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "poetry.lock").write_text("# poetry\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))

    with pytest.raises(LambdaConfigurationError) as raised:
        installed_dependencies("f", tmp_path, host_interpreter())

    assert str(raised.value).startswith(f"function f: its entry folder {tmp_path} has a poetry.lock")
    assert "poetry is not on PATH" in str(raised.value) and "requirements.txt" in str(raised.value)


def test_a_failed_install_names_the_file_and_keeps_pips_output(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "requirements.txt").write_text("--no-index\nno-such-package-anywhere==0.0.1\n")

    with pytest.raises(LambdaConfigurationError) as raised:
        installed_dependencies("f", tmp_path, host_interpreter())

    message = str(raised.value)
    assert message.startswith(f"function f: installing the packages of {tmp_path / 'requirements.txt'} with")
    log = Path(message.rsplit("pip's full output is in ", 1)[1])
    assert "no-such-package-anywhere" in log.read_text()
    assert not list((cache / "dependencies").glob("*.partial"))  # nothing half-installed is left


def test_a_worker_imports_the_installed_packages_right_after_its_code(entry: Path, cache: Path) -> None:
    spec = FunctionSpec("f", "app.handler", [entry], bundled_requirements=entry)

    with LambdaRuntime([spec]) as runtime:
        version, path = json.loads(runtime.invoke("f", b"{}").payload)

    assert version == "1.0"
    assert path[0] == str(entry) and Path(path[1]).parent == cache / "dependencies"


def test_without_bundling_a_requirements_file_installs_nothing(entry: Path, cache: Path) -> None:
    with LambdaRuntime([FunctionSpec("f", "app.handler", [entry])]) as runtime:
        answer = json.loads(runtime.invoke("f", b"{}").payload)

    assert answer["errorType"] == "Runtime.ImportModuleError"
    assert answer["errorMessage"] == "Unable to import module 'app': No module named 'tinypkg'"
    assert not (cache / "dependencies").exists()
