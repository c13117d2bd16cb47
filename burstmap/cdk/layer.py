"""The Lambda layer that ships burstmap's runtime modules, bundled locally (no Docker).

Handlers on Lambda get only their own asset. The modules they share with the rest of the project
(`burstmap.runtime`: contracts, compute, results) reach them through this layer, laid out as
Lambda expects for Python: ``python/burstmap/...`` (Lambda puts ``/opt/python`` on ``sys.path``).

The layer holds only what runs inside Lambda: the local engine, the CLI and the CDK construct stay out
(they import aws-cdk-lib, rich, typer, moto, none of which the Lambda runtime has).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from burstmap.cdk.assets import package_dir

#: The modules of the burstmap package that run inside Lambda (and nothing else).
RUNTIME_MODULES: tuple[str, ...] = (
    "__init__.py",
    "compute.py",
    "runtime/__init__.py",
    "runtime/compute.py",
    "runtime/contracts.py",
    "runtime/results.py",
)

#: Lambda runtimes the layer declares itself compatible with (it is pure Python, stdlib + boto3).
COMPATIBLE_RUNTIMES: tuple[lambda_.Runtime, ...] = (
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
)

# The asset hash covers the runtime modules only: editing the CLI or the local engine must not change
# the layer's hash (and so must not redeploy it). Glob patterns; "!" re-includes.
_FINGERPRINT_EXCLUDES: tuple[str, ...] = ("*", "!runtime", *(f"!{name}" for name in RUNTIME_MODULES))


@jsii.implements(cdk.ILocalBundling)
class _CopyRuntimeModules:
    """Local bundling: copy the runtime modules into ``python/burstmap`` of the asset output directory."""

    def __init__(self, source: Path, modules: Sequence[str]) -> None:
        self._source = source
        self._modules = tuple(modules)

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:  # noqa: ARG002 (jsii signature)
        """Copy the modules that exist; CDK calls this at synth instead of running a container."""
        target = Path(output_dir) / "python" / "burstmap"
        target.mkdir(parents=True, exist_ok=True)
        missing = [name for name in self._modules if not (self._source / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"burstmap runtime modules missing from {self._source}: {', '.join(missing)}; "
                "reinstall burstmap (pip install -e .) so the Lambda layer can be built"
            )
        for name in self._modules:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self._source / name, target / name)
        (target / "py.typed").touch()
        return True


def runtime_layer_code() -> lambda_.Code:
    """The layer's code asset: burstmap's runtime modules under ``python/burstmap``, bundled locally."""
    source = package_dir()
    return lambda_.Code.from_asset(
        str(source),
        exclude=list(_FINGERPRINT_EXCLUDES),
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds, so CDK never falls back to this image.
            image=cdk.DockerImage.from_registry("burstmap/local-bundling-only"),
            local=_CopyRuntimeModules(source, RUNTIME_MODULES),
        ),
    )


class BurstmapLayer(lambda_.LayerVersion):
    """A LayerVersion with burstmap's runtime modules; one per stack via :meth:`of`.

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
