"""Where the project's Lambda code lives, in a checkout and in an installed wheel alike."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def lambdas_dir() -> Path:
    """The directory holding start/, combine/ and example_compute/ (shipped as burstmap.lambdas)."""
    spec = importlib.util.find_spec("burstmap.lambdas")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("burstmap.lambdas is missing: reinstall burstmap (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def package_dir() -> Path:
    """The burstmap package directory (copied into the runtime layer)."""
    return Path(__file__).resolve().parent.parent
