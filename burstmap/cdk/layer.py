"""BurstmapLayer: the Lambda layer that ships ``burstmap.runtime``, built at synth time (no Docker).

Handlers on Lambda get only their own asset. What they share with the rest of the project reaches them
through this layer, laid out as Lambda expects for Python (``/opt/python`` is on ``sys.path``)::

    python/burstmap/__init__.py     the package (its CDK names load lazily, never inside Lambda)
    python/burstmap/compute.py      the public path: ``from burstmap.compute import compute_handler``
    python/burstmap/runtime/...     the whole runtime package (stdlib + boto3 only)

The rule is the folder, not a list of modules: a new runtime module ships, and changes the layer's asset
hash, without anything here changing. The CLI, the local engine and the CDK construct stay out (they
import aws-cdk-lib, rich, typer, moto, none of which the Lambda runtime has), so editing them neither
changes the hash nor redeploys the layer.

The layer's directory is built in a cache keyed by the sha256 of the shipped files
(``$XDG_CACHE_HOME/burstmap/layer/<sha256>/``, default ``~/.cache``) and handed to ``Code.from_asset``
as it is. No bundling step is involved, so the layer is the same whether or not a synth bundles assets
(a local run synthesizes with ``aws:cdk:bundling-stacks = []``, which skips every bundling).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from burstmap.cdk.assets import package_dir

#: Modules at the top of the burstmap package that ship (``__init__`` and the public compute path).
LAYER_TOP_MODULES: tuple[str, ...] = ("__init__.py", "compute.py")
#: The package that ships whole: everything under it except bytecode caches.
LAYER_PACKAGE = "runtime"
#: Where the shipped files go inside the layer (Lambda puts ``/opt/python`` on ``sys.path``).
LAYER_PREFIX = "python/burstmap"
#: An empty marker the layer adds (PEP 561: the package is typed).
TYPED_MARKER = "py.typed"

#: Lambda runtimes the layer declares itself compatible with (it is pure Python, stdlib + boto3).
COMPATIBLE_RUNTIMES: tuple[lambda_.Runtime, ...] = (
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
)


def layer_files(source: Path) -> list[str]:
    """The files the layer ships, relative to the burstmap package directory ``source``, sorted.

    FileNotFoundError (saying how to fix it) when the package is incomplete.
    """
    package = source / LAYER_PACKAGE
    missing = [name for name in LAYER_TOP_MODULES if not (source / name).is_file()]
    if not (package / "__init__.py").is_file():
        missing.append(f"{LAYER_PACKAGE}/__init__.py")
    if missing:
        raise FileNotFoundError(
            f"burstmap runtime modules missing from {source}: {', '.join(missing)}; "
            "reinstall burstmap (pip install -e .) so the Lambda layer can be built"
        )
    shipped = [*LAYER_TOP_MODULES]
    for path in package.rglob("*"):
        relative = path.relative_to(source)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix not in (".pyc", ".pyo"):
            shipped.append(relative.as_posix())
    return sorted(shipped)


def layer_cache_root() -> Path:
    """``$XDG_CACHE_HOME/burstmap/layer`` (default ``~/.cache/burstmap/layer``)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "burstmap" / "layer"


def _tree_digest(root: Path, names: list[str]) -> str:
    """sha256 over each file's relative path and bytes: equal exactly when the shipped files are."""
    digest = hashlib.sha256()
    for name in names:
        data = (root / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def build_layer_directory(source: Path | None = None, cache_root: Path | None = None) -> Path:
    """The layer's directory (``python/burstmap/...``) for the package in ``source``, built once per content.

    ``source`` is the burstmap package directory (default: the installed one), ``cache_root`` where the
    built directories live (default :func:`layer_cache_root`). A directory is built beside its final
    name and renamed into place, so concurrent synths never see half of one; a cached directory whose
    files no longer match its name (edited or damaged by hand) is built again.
    """
    source = source if source is not None else package_dir()
    names = layer_files(source)
    digest = _tree_digest(source, names)
    root = cache_root if cache_root is not None else layer_cache_root()
    target = root / digest
    if target.is_dir() and _is_intact(target, names, digest):
        return target
    building = root / f".{digest}.{uuid.uuid4().hex}.building"
    try:
        for name in names:
            (building / LAYER_PREFIX / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, building / LAYER_PREFIX / name)
        (building / LAYER_PREFIX / TYPED_MARKER).touch()
        if target.is_dir():  # damaged: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            building.rename(target)
        except OSError:  # another synth renamed its copy first: theirs is the same content
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _is_intact(target: Path, names: list[str], digest: str) -> bool:
    package = target / LAYER_PREFIX
    present = (
        sorted(path.relative_to(package).as_posix() for path in package.rglob("*") if path.is_file())
        if package.is_dir()
        else []
    )
    if present != sorted([*names, TYPED_MARKER]):
        return False
    return _tree_digest(package, names) == digest


def runtime_layer_code(source: Path | None = None, cache_root: Path | None = None) -> lambda_.Code:
    """The layer's code asset: :func:`build_layer_directory`, as it is (no bundling)."""
    return lambda_.Code.from_asset(str(build_layer_directory(source, cache_root)))


class BurstmapLayer(lambda_.LayerVersion):
    """A LayerVersion with burstmap's runtime package; one per stack via :meth:`of`.

    Use it on your own compute function so the handler can ``from burstmap.compute import compute_handler``::

        layer = BurstmapLayer.of(self)
        fn = aws_lambda.Function(..., layers=[layer])
    """

    _SINGLETON_ID = "BurstmapRuntimeLayer"

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(
            scope,
            construct_id,
            code=runtime_layer_code(),
            compatible_runtimes=list(COMPATIBLE_RUNTIMES),
            compatible_architectures=[lambda_.Architecture.ARM_64, lambda_.Architecture.X86_64],
            description="burstmap runtime modules (contracts, compute, results) for the job's Lambdas",
            license="Apache-2.0",
        )

    @classmethod
    def of(cls, scope: Construct) -> BurstmapLayer:
        """The stack's one burstmap layer, created on first use (two BurstCompute share it)."""
        stack = cdk.Stack.of(scope)
        existing = stack.node.try_find_child(cls._SINGLETON_ID)
        if existing is None:
            return cls(stack, cls._SINGLETON_ID)
        if not isinstance(existing, BurstmapLayer):
            raise TypeError(
                f"The construct id {cls._SINGLETON_ID!r} at the stack root is taken by a "
                f"{type(existing).__name__}; rename that construct so burstmap can place its layer there."
            )
        return existing
