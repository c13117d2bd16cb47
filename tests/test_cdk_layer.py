"""The runtime layer's local bundler: what it copies, and the clear error when a module is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from burstmap.cdk.layer import RUNTIME_MODULES, _CopyRuntimeModules


def _package(tmp_path: Path, modules: tuple[str, ...]) -> Path:
    source = tmp_path / "burstmap"
    (source / "local").mkdir(parents=True)
    (source / "local" / "engine.py").write_text("# engine\n")
    for name in (*modules, "cli.py", "construct.py"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(f"# {name}\n")
    return source


def test_bundler_copies_the_runtime_modules_under_python_burstmap(tmp_path: Path) -> None:
    source = _package(tmp_path, RUNTIME_MODULES)
    output = tmp_path / "out"
    output.mkdir()
    assert _CopyRuntimeModules(source, RUNTIME_MODULES).try_bundle(str(output)) is True
    shipped = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert shipped == sorted([f"python/burstmap/{m}" for m in RUNTIME_MODULES] + ["python/burstmap/py.typed"])
    assert (output / "python/burstmap/compute.py").read_text() == "# compute.py\n"


def test_a_missing_runtime_module_fails_the_bundling_and_says_what_to_do(tmp_path: Path) -> None:
    source = _package(tmp_path, tuple(m for m in RUNTIME_MODULES if m != "runtime/results.py"))
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing from .*: runtime/results.py; reinstall burstmap"):
        _CopyRuntimeModules(source, RUNTIME_MODULES).try_bundle(str(output))
