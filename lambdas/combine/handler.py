"""Default combiner: the exact sum of every item's result, the item counts and the first failed items.

Event (the construct's Combine task):
``{"results": {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}, "parameters": {...}, "count": N,
"batched": true | false}`` (``batched``: whether a COMPACT record is a batch's list of results).
Output (the execution's output, docs/architecture.md)::

    {"total_sum": "<decimal>", "succeeded": S, "failed": F, "failed_items": [...], "manifest": "s3://b/k"}

The reading and the sum live in ``burstmap.runtime.results`` (the burstmap layer), so a custom
combiner reuses them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from burstmap.runtime.contracts import CombineOutput
from burstmap.runtime.results import DEFAULT_WORKERS, batched_flag, manifest_location, summarize

# Results are integers of tens of thousands of digits; let a user's code in this process convert them too.
sys.set_int_max_str_digits(0)

WORKERS = int(os.environ.get("BURSTMAP_COMBINE_WORKERS", DEFAULT_WORKERS))


def combine(event: Any, *, s3: Any = None, workers: int = WORKERS) -> CombineOutput:
    """Sum the results under the manifest the event names."""
    bucket, key = manifest_location(event)
    return summarize(bucket, key, s3=s3, workers=workers, batched=batched_flag(event))


def handler(event: Any, context: Any) -> CombineOutput:  # noqa: ARG001 - Lambda's signature
    return combine(event)
