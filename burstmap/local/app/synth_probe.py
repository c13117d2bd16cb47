"""What a CDK app read outside its own directory, recorded while it synthesizes (stdlib only).

synth.py copies this file as ``sitecustomize.py`` into a folder of its own and puts that folder first on
the app's PYTHONPATH, for the synth subprocess only. At start-up it restores the app's own PYTHONPATH
(so nothing the app runs inherits the probe), loads the ``sitecustomize`` it shadowed, if any, and
watches two things:

- the module files the app imported, except the interpreter's standard library and site-packages
  (which change only when packages are installed: their distributions are listed instead);
- the path strings the app passed into jsii (asset directories and files: ``Code.from_asset(...)``),
  by wrapping ``jsii._kernel._make_reference_for_native``, which every jsii call sends its arguments
  through, nested values included.

At exit it writes them as JSON to the file named by ``BURSTMAP_SYNTH_PROBE``. A probe that fails never
fails the app: the stamp then covers less, and synth.py treats a missing report as "know nothing".
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.abc
import importlib.util
import json
import os
import site
import sys
import sysconfig
from typing import Any

REPORT_ENV = "BURSTMAP_SYNTH_PROBE"
ORIGINAL_PYTHONPATH_ENV = "BURSTMAP_SYNTH_PYTHONPATH"
"""The app's own PYTHONPATH ("" when it had none): restored before the app runs."""
MAX_RECORDED_STRINGS = 50_000

_path_strings: set[str] = set()


def _looks_like_path(value: str) -> bool:
    """Absolute, or relative with a directory part (a bare name inside the app is the app's own)."""
    return 0 < len(value) < 4096 and "\n" not in value and (os.sep in value or value.startswith("."))


def _wrap_kernel(module: Any) -> None:
    original = module._make_reference_for_native

    def recording(kernel: Any, value: Any) -> Any:
        if isinstance(value, str) and len(_path_strings) < MAX_RECORDED_STRINGS and _looks_like_path(value):
            _path_strings.add(value)
        return original(kernel, value)

    module._make_reference_for_native = recording


class _JsiiKernelHook(importlib.abc.MetaPathFinder):
    """Wraps ``jsii._kernel`` right after it is first imported (the app may never import jsii)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "jsii._kernel":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            with contextlib.suppress(Exception):  # a probe never fails the app
                _wrap_kernel(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _installed_roots() -> list[str]:
    """The interpreter's stdlib and site-packages folders: what an installed package lives in."""
    paths = sysconfig.get_paths()
    roots = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's old site module
        pass
    # another environment's packages put on sys.path (PYTHONPATH, a .pth file) are installed packages too
    roots.update(entry for entry in sys.path if os.path.basename(entry) in ("site-packages", "dist-packages"))
    return sorted({os.path.realpath(root) for root in roots if root})


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths[key]) for key in ("purelib", "platlib") if paths.get(key)})


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def _report(destination: str, probe_dir: str, cwd: str) -> None:
    roots = [*_installed_roots(), probe_dir]
    modules = set()
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and os.path.isfile(filename):
            real = os.path.realpath(filename)
            if not _inside(real, roots):
                modules.add(real)
    paths = set()
    for value in _path_strings:
        real = os.path.realpath(os.path.join(cwd, value))
        if os.path.exists(real) and not _inside(real, roots):
            paths.add(real)
    report = {"modules": sorted(modules), "paths": sorted(paths), "site_dirs": _site_dirs()}
    with open(destination, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


def _install() -> None:
    destination = os.environ.pop(REPORT_ENV, None)
    original = os.environ.pop(ORIGINAL_PYTHONPATH_ENV, None)
    probe_dir = os.path.dirname(os.path.realpath(__file__))
    if original is not None:  # the app, and whatever it starts, sees its own PYTHONPATH
        if original:
            os.environ["PYTHONPATH"] = original
        else:
            os.environ.pop("PYTHONPATH", None)
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != probe_dir]
    if destination:
        sys.meta_path.insert(0, _JsiiKernelHook())
        atexit.register(_report, destination, probe_dir, os.getcwd())


def _load_shadowed_sitecustomize() -> None:
    """The sitecustomize this file shadows (a distribution's or the venv's), loaded as site would."""
    ours = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError:  # none: site finds this module where it put it
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    except Exception as exc:  # site reports it the same way and goes on
        print(
            f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )


with contextlib.suppress(Exception):  # a probe never fails the app
    _install()
_load_shadowed_sitecustomize()
