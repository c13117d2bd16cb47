"""The Wait state: waits a number of seconds or until a timestamp, through the execution's clock.

JSONPath gives Seconds, SecondsPath, Timestamp or TimestampPath; JSONata gives Seconds or
Timestamp, each a literal or an expression. A timestamp is an ISO-8601 extended offset date-time
(T, seconds and an offset required; up to nanoseconds); one in the past waits nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from burstmap.local.core.errors import DefinitionError, QueryEvaluationError, StateRuntimeError
from burstmap.local.core.json_text import value_text
from burstmap.local.flow.io import JSONATA_IO, JSONPATH_IO
from burstmap.local.query.jsonata import JSONATA, JSONPATH, integer_value, is_expression, resolve, state_env
from burstmap.local.query.jsonpath import read_path
from burstmap.local.states.checks import FLOW, JSONATA_COMMON, JSONPATH_BASE, StateCheck, integer_at_least
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: JSONPATH_BASE | FLOW | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Assign"},
    JSONATA: JSONATA_COMMON | FLOW | {"Seconds", "Timestamp", "Output", "Assign"},
}
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(text: Any) -> datetime | None:
    """An ISO-8601 extended offset date-time, or None when `text` is not one."""
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{(fraction or '0')[:6].ljust(6, '0')}"
            + ("+00:00" if offset == "Z" else offset)
        )
    except ValueError:
        return None
    return moment


def validate(check: StateCheck) -> None:
    state, name = check.state, check.name
    if check.jsonata:
        if len([key for key in ("Seconds", "Timestamp") if key in state]) != 1:
            raise DefinitionError(f"Wait state '{name}' needs exactly one of Seconds or Timestamp")
    elif len([key for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if key in state]) != 1:
        raise DefinitionError(
            f"Wait state '{name}' needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"
        )
    seconds, timestamp = state.get("Seconds"), state.get("Timestamp")
    literal = not (check.jsonata and is_expression(seconds))
    if "Seconds" in state and literal and not integer_at_least(seconds, 0):
        raise DefinitionError(f"Wait state '{name}': Seconds must be a non-negative integer, got {seconds!r}")
    literal = not (check.jsonata and is_expression(timestamp))
    if "Timestamp" in state and literal and parse_timestamp(timestamp) is None:
        raise DefinitionError(f"Wait state '{name}': Timestamp must be an ISO-8601 date-time with an offset")


def run(step: Step) -> tuple[str | None, Any]:
    services = step.services  # services.sleep: a stopped execution's wait ends at the stop
    if step.jsonata:
        env = state_env(step.data, step.context)
        services.sleep(_jsonata_seconds(step, env))
        return step.next_state(), JSONATA_IO.finish(step.state, env, step.data)
    effective = JSONPATH_IO.effective_input(step.state, step.data, step.context)
    services.sleep(_jsonpath_seconds(step, effective))
    return step.next_state(), JSONPATH_IO.finish(step.state, effective, effective, step.context)


def _until(step: Step, moment: datetime) -> float:
    return max(0.0, (moment - step.services.clock.now()).total_seconds())


def _jsonpath_seconds(step: Step, effective: Any) -> float:
    state = step.state
    if "Seconds" in state:
        return state["Seconds"]
    if "Timestamp" in state:
        moment = parse_timestamp(state["Timestamp"])
        assert moment is not None  # checked at load time
        return _until(step, moment)
    field = "SecondsPath" if "SecondsPath" in state else "TimestampPath"
    path = state[field]
    value = read_path(path, effective, step.context)
    if field == "TimestampPath":
        moment = parse_timestamp(value)
        if moment is None:
            raise StateRuntimeError(
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                f"date-time format string: {path} == {value_text(value)}"
            )
        return _until(step, moment)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or (isinstance(value, float) and not value.is_integer()):
        raise StateRuntimeError(
            f"The SecondsPath parameter cannot be parsed as a long value: {path} == {value_text(value)}"
        )
    if value < 0:
        raise StateRuntimeError(
            f"The SecondsPath parameter references a negative value: {path} == {value_text(value)}"
        )
    return value


def _jsonata_seconds(step: Step, env: Any) -> float:
    state = step.state
    if "Seconds" in state:
        return integer_value(state["Seconds"], "Seconds", env, minimum=0)
    value = resolve(state["Timestamp"], "Timestamp", env)
    moment = parse_timestamp(value)
    if moment is None:
        raise QueryEvaluationError(
            "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
            f"string: {value_text(value)}"
        )
    return _until(step, moment)
