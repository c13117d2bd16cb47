"""burstmap: embarrassingly parallel Python jobs on AWS Step Functions Distributed Map and Lambda.

The package also runs inside Lambda (as a layer) where aws-cdk-lib is not installed, so the CDK
construct is imported lazily: ``from burstmap import BurstCompute`` loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BurstCompute",
    "BurstmapFunction",
    "BurstmapLayer",
    "combine_handler",
    "compute_handler",
    "run_local",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.cdk.construct import BurstCompute
    from burstmap.cdk.function import BurstmapFunction
    from burstmap.cdk.layer import BurstmapLayer
    from burstmap.client.local_job import run_local
    from burstmap.runtime.combine import combine_handler
    from burstmap.runtime.compute import compute_handler

_LAZY = {
    "BurstCompute": "burstmap.cdk.construct",
    "BurstmapFunction": "burstmap.cdk.function",
    "BurstmapLayer": "burstmap.cdk.layer",
    "combine_handler": "burstmap.runtime.combine",
    "compute_handler": "burstmap.runtime.compute",
    "run_local": "burstmap.client.local_job",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'burstmap' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
