"""Lambda handlers the direct-Task tests run in worker processes (importable without pytest)."""

from __future__ import annotations

import time
from typing import Any


def handler(event: Any, context: Any) -> Any:
    """Exercises every way a lambda:invoke child can end."""
    value = event["Items"][0] if isinstance(event, dict) and "Items" in event else event
    value = value.get("v") if isinstance(value, dict) else value
    if value == "raise":
        raise ValueError("bad item")
    if value == "flaky":
        raise type("Flaky", (Exception,), {})("try again")
    if value == "big":
        return "x" * 300_000  # over 256 KiB: DataLimitExceeded
    if value == "not-json":
        return b"{nope"
    if value == "nothing":
        return None
    return {"seen": event}


def dying_handler(event: Any, context: Any) -> Any:
    """A worker-served handler that crashes its process or sleeps past its timeout on request."""
    import os as worker_os

    value = event["Items"][0]
    if value == "die":
        worker_os._exit(3)
    if value == "sleep":
        time.sleep(30)
    return value
