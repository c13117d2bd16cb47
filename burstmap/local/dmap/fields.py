"""Load-time checks shared by the distributed Map's blocks (the state, ItemReader, ItemBatcher,
ResultWriter): one wording for an invalid value, an integer range, and "X or XPath, not both"."""

from __future__ import annotations

from typing import Any

from burstmap.local.core.errors import InvalidDefinition


def invalid(message: str, state_name: str) -> InvalidDefinition:
    return InvalidDefinition(f"invalid distributed Map state '{state_name}': {message}")


def field_names(template: dict[str, Any]) -> set[str]:
    """A payload template's field names, without the ".$" of a path field."""
    return {key[:-2] if key.endswith(".$") else key for key in template}


def check_exclusive(block: dict[str, Any], name: str, where: str, state_name: str) -> None:
    """A field is given as `name` or as `namePath`, not both."""
    if name in block and f"{name}Path" in block:
        raise invalid(f"provide either {where}{name} or {where}{name}Path, but not both", state_name)


def check_int(value: Any, name: str, state_name: str, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise invalid(f"{name} must be an integer of at least {minimum}{bound}, got {value!r}", state_name)
