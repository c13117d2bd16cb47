"""What a function's workers see: the interpreter, the import path and the environment variables Lambda
gives a Python function, built from its FunctionSpec.

On Lambda (python3.11 and later, the runtime's ``bootstrap.py``) a handler's ``sys.path`` is its code
(``/var/task``), then its layers (``/opt/python/lib/python3.X/site-packages``, then ``/opt/python``; layers
are extracted into ``/opt`` in order, a later one overwriting an earlier one), then the runtime's own
packages (boto3, botocore and their dependencies in ``/var/lang/lib/python3.X/site-packages``), then the
standard library; the code and layer folders are site directories (their ``.pth`` files are read). A
worker gets exactly that, with the local folders in those places: it runs isolated (``-I -S``), so
nothing of the development environment is importable, and the runtime's packages are a cached folder of
links to this environment's boto3 and its dependencies (``runtime_dir``, also ``LAMBDA_RUNTIME_DIR``).

Its environment is the function's ``Environment.Variables`` plus Lambda's defined variables and the
local plumbing (``extra_env``: the S3 endpoint and credentials), nothing else of this process's
environment. ``AWS_LAMBDA_RUNTIME_API`` is not set: a worker takes its invocations from a pipe, and no
Runtime API listens here.

A FunctionSpec without code (``code_paths`` empty: ``execute(functions={"F": "module:function"})``) is not
a deployed function: its worker imports the module from this Python's own path, as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from burstmap.local.services.lambda_dependencies import cache_root, dependency_file, installed_dependencies
from burstmap.local.services.lambda_errors import LambdaConfigurationError
from burstmap.local.services.lambda_function import (
    LATEST,
    FunctionSpec,
    function_environment,
    log_stream_name,
)
from burstmap.local.services.python_interpreters import Interpreter, host_interpreter, interpreter_for_runtime

Notice = Callable[[str], None]
"""Where a warning about one function goes (once per function), e.g. a logger's warning method."""

RUNTIME_MODULES = ("boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six")
"""What the Lambda Python runtime ships besides the standard library: the SDK and its dependencies."""
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "jmespath", "python_dateutil", "s3transfer", "urllib3", "six")

RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
"""Lambda's reserved keys: a function whose Environment.Variables sets one is refused at deploy."""
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
SYSTEM_LIBRARY_PATH = ("/lib64", "/usr/lib64")


@dataclass(frozen=True)
class WorkerLaunch:
    """How the workers of one function start."""

    interpreter: Interpreter
    isolated: bool
    """Lambda's import path (``-I -S``); False for a FunctionSpec without code (this Python's own path)."""
    env: dict[str, str]
    cwd: str | None
    import_path: list[str] = field(default_factory=list)
    site_dirs: list[str] = field(default_factory=list)
    """Folders whose ``.pth`` files the worker reads, as the runtime's bootstrap does (site.addsitedir)."""
    bundled_requirements: Path | None = None
    """The cached folder of the packages installed from the function's dependency file, if any."""

    def command(self, worker_script: Path) -> list[str]:
        """The worker's command line, before its own arguments."""
        if not self.isolated:
            return [sys.executable, str(worker_script)]
        return [str(self.interpreter.path), "-I", "-S", "-u", str(worker_script)]


def prepare_launch(
    spec: FunctionSpec, region: str, extra_env: dict[str, str], notice: Notice
) -> WorkerLaunch:
    """Everything a function's workers need, settled once before the first one starts: the interpreter,
    the packages its bundling would install (installed now if not cached), the import path and the
    environment. Warnings (another Python version, native code for another architecture) go to ``notice``.
    """
    if not spec.code_paths:
        return WorkerLaunch(
            interpreter=host_interpreter(),
            isolated=False,
            env=function_environment(spec, region, extra_env),
            cwd=None,
        )
    reserved = sorted(RESERVED_VARIABLES & set(spec.environment))
    if reserved:
        raise LambdaConfigurationError(
            f"function {spec.name}: its environment variables set {', '.join(reserved)}, which Lambda "
            "reserves (a deploy fails: the environment variables contain reserved keys): remove them; "
            "the function reads Lambda's own values"
        )
    interpreter, why = interpreter_for_runtime(spec.runtime)
    oldest = runtime_minimum_python()
    if oldest is not None and interpreter.version < oldest:
        host = host_interpreter()
        why = (
            f"it declares {spec.runtime}, but the boto3 of this environment (the Lambda runtime's packages "
            f"here) needs Python >= {oldest[0]}.{oldest[1]}, so it runs on this Python {host.version_text} "
            f"({host.path})"
        )
        interpreter = host
    if why is not None:
        notice(f"function {spec.name}: {why}")
    task_root = Path(spec.code_paths[0])
    dependencies = None
    if spec.bundled_requirements is not None:
        dependencies = installed_dependencies(spec.name, Path(spec.bundled_requirements), interpreter)
    layers = [Path(layer) for layer in spec.layers]
    layer_version = spec.runtime or interpreter.runtime
    layer_paths = [layer / "python" / "lib" / layer_version / "site-packages" for layer in reversed(layers)]
    layer_paths += [layer / "python" for layer in reversed(layers)]
    runtime = runtime_dir(notice)
    import_path = [
        task_root,
        *([dependencies] if dependencies is not None else []),
        *spec.code_paths[1:],
        *layer_paths,
        runtime,
    ]
    _check_architecture(spec, interpreter, [task_root, *filter(None, [dependencies]), *layers], notice)
    return WorkerLaunch(
        interpreter=interpreter,
        isolated=True,
        env=lambda_environment(spec, region, extra_env, interpreter, task_root, runtime, layers),
        cwd=str(task_root),
        import_path=[str(path) for path in import_path],
        site_dirs=[str(path) for path in (task_root, dependencies, *layer_paths) if path is not None],
        bundled_requirements=dependencies,
    )


def lambda_environment(
    spec: FunctionSpec,
    region: str,
    extra_env: dict[str, str],
    interpreter: Interpreter,
    task_root: Path,
    runtime: Path,
    layers: list[Path],
) -> dict[str, str]:
    """Lambda's defined variables, then the function's own, then the local plumbing (``extra_env``)."""
    prefix = interpreter.path.parent.parent
    env = {
        "_HANDLER": str(spec.handler),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or interpreter.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(),
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime),
        "LANG": "en_US.UTF-8",
        "PATH": _joined([interpreter.path.parent, *SYSTEM_PATH, *(layer / "bin" for layer in layers)]),
        "LD_LIBRARY_PATH": _joined(
            [
                prefix / "lib",
                *SYSTEM_LIBRARY_PATH,
                runtime,
                runtime / "lib",
                task_root,
                task_root / "lib",
                *(layer / "lib" for layer in layers),
            ]
        ),
        "PYTHONPATH": str(runtime),  # what the runtime's bootstrap sets once the handler's path is built
        "TZ": ":UTC",
    }
    env.update({key: str(value) for key, value in spec.environment.items()})
    env.update(extra_env)
    if "AWS_ACCESS_KEY_ID" in env:
        env["AWS_ACCESS_KEY"] = env["AWS_ACCESS_KEY_ID"]
    return env


def _joined(paths: Iterable[Path | str]) -> str:
    return ":".join(str(path) for path in paths)


@functools.cache
def _runtime_sources() -> tuple[tuple[str, str], ...]:
    """(name in the runtime folder, path in this environment) of every runtime module and its metadata."""
    found: list[tuple[str, str]] = []
    site_dirs: set[Path] = set()
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            path = Path(spec.origin)
        else:
            continue
        found.append((path.name, str(path)))
        site_dirs.add(path.parent)
    for site_dir in site_dirs:
        for distribution in RUNTIME_DISTRIBUTIONS:
            for info in site_dir.glob(f"{distribution}-*.dist-info"):
                found.append((info.name, str(info)))
    return tuple(sorted(set(found)))


@functools.cache
def runtime_minimum_python() -> tuple[int, int] | None:
    """The oldest Python the runtime packages of this environment support (their ``Requires-Python``)."""
    oldest: tuple[int, int] | None = None
    for name, path in _runtime_sources():
        if not name.endswith(".dist-info"):
            continue
        try:
            metadata = (Path(path) / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = re.search(r"^Requires-Python:.*?>=\s*(\d+)\.(\d+)", metadata, re.MULTILINE)
        if found is not None:
            version = (int(found.group(1)), int(found.group(2)))
            oldest = version if oldest is None else max(oldest, version)
    return oldest


def runtime_dir(notice: Notice) -> Path:
    """The folder of the runtime's packages: links to this environment's boto3, botocore and their
    dependencies (built once, then reused). It is ``LAMBDA_RUNTIME_DIR`` and ``PYTHONPATH`` too, so a
    Python the handler starts imports boto3, as on Lambda."""
    sources = _runtime_sources()
    missing = sorted(set(RUNTIME_MODULES) - {Path(path).stem for _, path in sources})
    if missing:
        _warn_missing_once(tuple(missing), notice)
    key = hashlib.sha256(repr(("links at the root", sources)).encode()).hexdigest()[:24]
    root = cache_root() / "lambda-runtime" / key
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root.parent))
    for name, path in sources:
        os.symlink(path, staging / name)
    try:
        os.rename(staging, root)
    except OSError:  # another process built it first
        for name, _ in sources:
            (staging / name).unlink()
        staging.rmdir()
    return root


@functools.cache
def _warn_missing_once(missing: tuple[str, ...], notice: Notice) -> None:
    notice(
        f"the Lambda Python runtime ships {', '.join(RUNTIME_MODULES)}, but {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not installed in this Python environment ({sys.prefix}), "
        "so local handlers cannot import them: pip install boto3"
    )


def _check_architecture(
    spec: FunctionSpec, interpreter: Interpreter, folders: list[Path], notice: Notice
) -> None:
    """Say once when native code bundled for this machine would run on another architecture on AWS."""
    if spec.architecture is None or spec.architecture == interpreter.machine:
        return
    native = _first_native_file(folders)
    if native is None:
        return
    notice(
        f"function {spec.name}: it is declared {spec.architecture} but bundles native code ({native}), and "
        f"this machine is {interpreter.machine}: the binaries that run here are not the ones Lambda runs. "
        f"Build its packages for {spec.architecture} for a deploy (pip install --platform "
        f"{'manylinux2014_aarch64' if spec.architecture == 'arm64' else 'manylinux2014_x86_64'} "
        "--only-binary=:all:, or in Docker)"
    )


def _first_native_file(folders: list[Path]) -> Path | None:
    for folder in folders:
        for directory, subdirectories, files in os.walk(folder, followlinks=True):
            subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
            for name in files:
                if name.endswith(".so") or ".so." in name:
                    return Path(directory, name)
    return None


def missing_module_hint(spec: FunctionSpec, error_type: str, message: str) -> str | None:
    """How to bundle the package whose import failed a function's init (``Runtime.ImportModuleError``
    ``... No module named 'X'``), or None for any other init failure."""
    match = re.search(r"No module named '([^'.]+)'$", message)
    if error_type != "Runtime.ImportModuleError" or match is None:
        return None
    module = match.group(1)
    if module == "burstmap":
        how = (
            "burstmap reaches Lambda functions through the BurstmapLayer: give the function "
            "layers=[BurstmapLayer.of(stack)]"
        )
    elif spec.bundled_requirements is not None:
        listed = dependency_file(Path(spec.bundled_requirements))
        how = (
            f"add it to {listed}"
            if listed is not None
            else f"add a requirements.txt listing it to {spec.bundled_requirements}"
        )
    else:
        how = (
            "bundle it: make the function a PythonFunction (aws-lambda-python-alpha) or a BurstmapFunction "
            f"whose entry folder has a requirements.txt listing it, or ship it in a layer (python/{module}/)"
        )
    here = ""
    if module != "burstmap" and importlib.util.find_spec(module) is not None:
        here = f" ({module} is installed in this development environment, which Lambda does not have)"
    return (
        f"function {spec.name}: {message}: it fails the same way on AWS (Runtime.ImportModuleError), as the "
        f"function's code, layers and the Lambda runtime do not provide {module}{here}; {how}"
    )
