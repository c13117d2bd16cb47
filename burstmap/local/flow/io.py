"""Input and output processing of a state.

A state's output holds at most 256 KiB of JSON (States.DataLimitExceeded).
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.errors import DATA_LIMIT_EXCEEDED, StatesError
from burstmap.local.core.json_text import json_size
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES


def check_output_size(state_name: str, output: Any) -> None:
    """A state's (or a task's) output past 256 KiB fails the state with States.DataLimitExceeded."""
    if isinstance(output, (dict, list, str)) and json_size(output) > STATE_PAYLOAD_LIMIT_BYTES:
        raise StatesError(
            DATA_LIMIT_EXCEEDED,
            f"The state/task '{state_name}' returned a result with a size exceeding the maximum number of "
            "bytes service limit.",
        )
