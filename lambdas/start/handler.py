"""The start Lambda: checks the execution input and emits the items (:mod:`burstmap.runtime.start`).

The request id names the item list it may write, so a retried start overwrites its own list; BurstCompute
sets the bucket and the items prefix in the environment.
"""

from __future__ import annotations

import os
from typing import Any

from burstmap.runtime.contracts import DEFAULT_ITEMS_PREFIX, ENV_BUCKET, ENV_ITEMS_PREFIX, StartOutput
from burstmap.runtime.start import start


def handler(event: Any, context: Any) -> StartOutput:
    return start(
        event,
        job_id=context.aws_request_id,
        bucket=os.environ.get(ENV_BUCKET) or None,
        items_prefix=os.environ.get(ENV_ITEMS_PREFIX) or DEFAULT_ITEMS_PREFIX,
    )
