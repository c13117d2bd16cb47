"""The default combine Lambda: the exact sum of the results and the failed-item report
(:mod:`burstmap.runtime.combine`, which a custom combiner can reuse).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from burstmap.runtime.combine import combine
from burstmap.runtime.concurrent_reads import DEFAULT_WORKERS
from burstmap.runtime.contracts import ENV_COMBINE_WORKERS, CombineOutput

# Results are integers of tens of thousands of digits; let a user's code in this process convert them too.
sys.set_int_max_str_digits(0)

WORKERS = int(os.environ.get(ENV_COMBINE_WORKERS, DEFAULT_WORKERS))


def handler(event: Any, context: Any) -> CombineOutput:  # noqa: ARG001 - Lambda's signature
    return combine(event, workers=WORKERS)
