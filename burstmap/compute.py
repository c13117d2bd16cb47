"""The public import path of the compute helper: ``from burstmap.compute import compute_handler``.

The implementation lives in :mod:`burstmap.runtime.compute` (what ships to Lambda in the burstmap layer);
this module keeps the path that user handlers import stable across burstmap's internal layout.
"""

from burstmap.runtime.compute import batch_compute_handler, compute_handler

__all__ = ["batch_compute_handler", "compute_handler"]
