"""BurstmapLayer: the Lambda layer that ships ``burstmap.runtime``, bundled locally (no Docker).

Handlers on Lambda get only their own asset. What they share with the rest of the project reaches them
through this layer, laid out as Lambda expects for Python (``/opt/python`` is on ``sys.path``)::

    python/burstmap/__init__.py     the package (its CDK names load lazily, never inside Lambda)
    python/burstmap/compute.py      the public path: ``from burstmap.compute import compute_handler``
    python/burstmap/runtime/...     the whole runtime package (stdlib + boto3 only)

The rule is the folder, not a list of modules: a new runtime module ships, and changes the layer's asset
hash, without anything here changing. The CLI, the local engine and the CDK construct stay out (they
import aws-cdk-lib, rich, typer, moto, none of which the Lambda runtime has), so editing them neither
changes the hash nor redeploys the layer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from burstmap.cdk.assets import package_dir

#: Modules at the top of the burstmap package that ship (``__init__`` and the public compute path).
LAYER_TOP_MODULES: tuple[str, ...] = ("__init__.py", "compute.py")
#: The package that ships whole: everything under it except bytecode caches.
LAYER_PACKAGE = "runtime"
#: Never shipped, never hashed: bytecode the interpreter writes beside the sources.
_BYTECODE = ("__pycache__", "*.pyc", "*.pyo")

#: Lambda runtimes the layer declares itself compatible with (it is pure Python, stdlib + boto3).
COMPATIBLE_RUNTIMES: tuple[lambda_.Runtime, ...] = (
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
)

# What the asset hash covers, in CDK's glob syntax (a name without "/" matches at any depth; "!"
# re-includes; an excluded directory is not entered). It must cover exactly what layer_files() ships.
_FINGERPRINT_EXCLUDES: tuple[str, ...] = (
    "*",
    *(f"!{name}" for name in LAYER_TOP_MODULES),
    f"!{LAYER_PACKAGE}",
    f"!{LAYER_PACKAGE}/**",
    *_BYTECODE,
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


@jsii.implements(cdk.ILocalBundling)
class _CopyRuntimePackage:
    """Local bundling: copy :func:`layer_files` into ``python/burstmap`` of the asset output directory."""

    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:  # noqa: ARG002 (jsii signature)
        """Copy the runtime package; CDK calls this at synth instead of running a container."""
        target = Path(output_dir) / "python" / "burstmap"
        for name in layer_files(self._source):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self._source / name, target / name)
        (target / "py.typed").touch()
        return True


def runtime_layer_code(source: Path | None = None) -> lambda_.Code:
    """The layer's code asset: burstmap's runtime package under ``python/burstmap``, bundled locally.

    ``source`` is the burstmap package directory (default: the installed one).
    """
    source = source if source is not None else package_dir()
    return lambda_.Code.from_asset(
        str(source),
        exclude=list(_FINGERPRINT_EXCLUDES),
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds, so CDK never falls back to this image.
            image=cdk.DockerImage.from_registry("burstmap/local-bundling-only"),
            local=_CopyRuntimePackage(source),
        ),
    )


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
