"""The BurstmapLayer's content in a local run, where CDK skipped its bundling.

On AWS the layer holds ``python/burstmap/`` with burstmap's top modules (``__init__.py``, ``compute.py``)
and its ``runtime`` package (cdk/layer.py bundles it). A local synth skips bundling, so the layer's asset
is then the burstmap package folder itself. The local run puts the same layout together from links into
that folder (``<assembly>/burstmap-layer/python/burstmap/...``), so handlers import ``burstmap.compute``
through the layer, as on AWS, and nothing else of the package (the CLI, the local engine, the construct).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent.parent
"""The burstmap package folder: the BurstmapLayer's asset when its bundling was skipped."""
SHIPPED = ("__init__.py", "compute.py", "runtime")
"""What the layer ships of the package (cdk/layer.py: LAYER_TOP_MODULES and LAYER_PACKAGE)."""
VIEW_DIR = "burstmap-layer"


def is_unbundled_runtime_layer(directory: Path) -> bool:
    """Whether a layer's asset folder is the burstmap package itself (the BurstmapLayer, not bundled)."""
    return directory.resolve() == PACKAGE_DIR


def runtime_layer_content(assembly_dir: Path) -> Path:
    """The layer's content as Lambda extracts it to ``/opt`` (made once per assembly folder)."""
    root = assembly_dir / VIEW_DIR
    package = root / "python" / "burstmap"
    package.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        link = package / name
        if link.is_symlink() and Path(os.readlink(link)) == PACKAGE_DIR / name:
            continue
        temporary = package / f".{name}.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        os.symlink(PACKAGE_DIR / name, temporary)
        os.replace(temporary, link)
    return root
