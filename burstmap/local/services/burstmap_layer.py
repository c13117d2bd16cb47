"""burstmap's runtime as a Lambda layer for functions the engine is given by name, not by an app.

On AWS a handler imports ``burstmap.compute`` through the BurstmapLayer (``/opt/python/burstmap``). A
function handed to ``execute(functions={"F": "module.function"})`` has no app and so no layer of its own:
it gets this one, a folder laid out as Lambda extracts the layer, of links into the installed package
(``__init__.py``, ``compute.py`` and ``runtime/``: what cdk/layer.py ships, and nothing else of burstmap).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from burstmap.local.services.lambda_dependencies import cache_root

PACKAGE_DIR = Path(__file__).resolve().parents[2]
"""The installed burstmap package folder."""
SHIPPED = ("__init__.py", "compute.py", "runtime")
"""What the BurstmapLayer ships of the package (cdk/layer.py)."""


def burstmap_layer() -> Path:
    """The layer's folder (holding ``python/burstmap``), built once per installed package location."""
    key = hashlib.sha256(str(PACKAGE_DIR).encode()).hexdigest()[:24]
    root = cache_root() / "burstmap-layer" / key
    if (root / "python" / "burstmap").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root.parent))
    package = staging / "python" / "burstmap"
    package.mkdir(parents=True)
    for name in SHIPPED:
        os.symlink(PACKAGE_DIR / name, package / name)
    try:
        os.rename(staging, root)
    except OSError:  # another process built it first
        for name in SHIPPED:
            (package / name).unlink()
        package.rmdir()
        package.parent.rmdir()
        staging.rmdir()
    return root
