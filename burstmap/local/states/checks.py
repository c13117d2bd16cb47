"""Load-time checks shared by the state types: the field sets, transitions, and the wording of a
field used in the wrong query language.

Each state type's module checks its own fields in `validate(check)`; definition.py checks what
every state has (Type, QueryLanguage, Next/End, Retry, Catch, Assign) before calling it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import DefinitionError, unsupported
from burstmap.local.query.jsonata import JSONATA

JSONPATH_BASE = frozenset({"Type", "Comment", "InputPath", "OutputPath"})
"""Fields of every JSONPath state but Fail (QueryLanguage is accepted on every state)."""
JSONPATH_RESULT = frozenset({"ResultPath", "ResultSelector", "Retry", "Catch"})
"""Fields of a JSONPath state that does work: Task, Parallel, Map."""
JSONATA_COMMON = frozenset({"Type", "Comment", "QueryLanguage"})
FLOW = frozenset({"Next", "End"})

JSONATA_ONLY_FIELDS = frozenset({"Arguments", "Output", "Items"})
JSONPATH_ONLY_FIELDS = frozenset(
    {
        "InputPath",
        "OutputPath",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Result",
        "ItemsPath",
        "MaxConcurrencyPath",
        "SecondsPath",
        "TimestampPath",
        "ErrorPath",
        "CausePath",
        "TimeoutSecondsPath",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
    }
)


@dataclass(frozen=True)
class StateCheck:
    """One state being checked at load time."""

    name: str
    state: dict[str, Any]
    states: dict[str, Any]
    """The states at the same level (where Next, Default and Catch.Next must point)."""
    language: str
    machine: Callable[..., None]
    """`machine(definition, where, processor=False)` checks a branch or an item processor."""

    @property
    def jsonata(self) -> bool:
        return self.language == JSONATA

    def next_exists(self, target: Any, field: str) -> None:
        if target not in self.states:
            raise DefinitionError(
                f"{field} {target!r} of state '{self.name}' names no state at the same level"
            )


def jsonata_only(field: str, state_name: str) -> DefinitionError:
    return DefinitionError(
        f"The QueryLanguage is set to 'JSONPath', but field '{field}' is only supported for the 'JSONata' "
        f"QueryLanguage (state '{state_name}')"
    )


def jsonpath_only(field: str, state_name: str) -> DefinitionError:
    return DefinitionError(
        f"The QueryLanguage is set to 'JSONata', but field '{field}' is only supported for the 'JSONPath' "
        f"QueryLanguage (state '{state_name}')"
    )


def check_fields(block: Any, allowed: frozenset[str], prefix: str, state_name: str) -> None:
    """A block (ItemReader, ItemBatcher, ...) is an object of the fields the engine runs."""
    if not isinstance(block, dict):
        raise DefinitionError(f"{prefix.rstrip('.')} in state '{state_name}' must be an object")
    for key in block:
        if key not in allowed:
            raise unsupported(f"{prefix}{key}", state_name)


def integer_at_least(value: Any, minimum: int) -> bool:
    """A JSON integer (not a boolean) of at least `minimum`."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum
