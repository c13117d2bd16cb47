"""The public import path of the handler helpers: ``from burstmap.compute import compute_handler``.

``compute_handler`` makes a compute Lambda of one function, ``combine_handler`` a combine Lambda of one
reduce function. The implementations live in :mod:`burstmap.runtime` (what ships to Lambda in the
burstmap layer); this module keeps the path that user handlers import stable across burstmap's layout.
"""

from burstmap.runtime.combine import CombineJob, combine_handler
from burstmap.runtime.compute import batch_compute_handler, compute_handler

__all__ = ["CombineJob", "batch_compute_handler", "combine_handler", "compute_handler"]
