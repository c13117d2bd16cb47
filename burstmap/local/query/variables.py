"""Workflow variables: `Assign` in both query languages, and `$name` references.

AWS behaviour followed here (developer guide, "Passing data between states with variables"):

* `Assign` is allowed on Pass, Task, Map, Parallel, Choice and Wait states, on Choice rules and on
  Catch clauses. Its keys are variable names; `states` is reserved (`$states` belongs to JSONata).
* Every expression of a state reads the variable values the state was entered with: a state's
  `Assign` (and `Output`) cannot see its own new values, which take effect when the state finishes.
* The top-level states share one scope. Each Parallel branch and inline Map iteration runs in a
  scope of its own that can read the outer scopes; what it assigns stays in its scope (data leaves a
  branch or an iteration through its output only). A distributed Map's child executions start with
  an empty scope: their states cannot read the parent's variables (pass them with ItemSelector).
* Size limits ("Limits"): one variable's value at most 256 KiB, the values of one `Assign` together at
  most 256 KiB, all stored variables at most 10 MiB per execution (sizes are of the values' compact
  UTF-8 JSON). The guide names no error for them; a state past one fails with States.DataLimitExceeded,
  the error AWS gives every other payload limit, and a cause naming the variable and the limit. The
  10 MiB total counts the scope being assigned and its enclosing scopes, never sibling branches or
  iterations running at once: it may let pass what AWS refuses, never the reverse.
* In a JSONPath state `Assign` is a payload template (`"name.$": "$.path"`), where `$` is the
  state's result (after ResultSelector; the effective input for Choice and Wait; the error output
  in a Catch clause), `$$` the context object and `$name` a variable.

The current scope is a context variable: the interpreter sets it for each (sub-)state machine it
runs, so path and expression evaluation anywhere below a state sees that state's variables.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from burstmap.local.core.errors import DATA_LIMIT_EXCEEDED, DefinitionError, StatesError
from burstmap.local.core.json_text import json_size

RESERVED_NAMES = frozenset({"states"})
MAX_NAME_LENGTH = 80
"""Guide, "Variable name syntax": "The maximum length of a variable name is 80"."""
MAX_VARIABLE_BYTES = 256 * 1024
"""Guide, "Limits": "The maximum size of a single variable is 256Kib"."""
MAX_ASSIGN_BYTES = 256 * 1024
"""Guide, "Limits": "The maximum combined size for all variables in a single Assign field is also 256Kib"."""
MAX_EXECUTION_VARIABLE_BYTES = 10 * 1024 * 1024
"""Guide, "Limits": "The total size of all stored variables cannot exceed 10MiB per execution"."""
VARIABLE_PATH = re.compile(r"^\$([^\W\d]\w*)(.*)$", re.DOTALL)
"""A JSONPath reference to a variable: `$name`, then an optional path into its value."""


def is_variable_name(name: str) -> bool:
    """Guide, "Variable name syntax": a Unicode identifier (an ID_Start character, then ID_Continue
    characters; Python's identifiers, which also allow a leading underscore as JavaScript does) of
    at most 80 characters."""
    return name.isidentifier() and len(name) <= MAX_NAME_LENGTH


class UndefinedVariable(LookupError):
    """A `$name` reference to a variable that no visible scope holds."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        self.message = (
            f"The variable '${name}' is not defined in this scope: assign it with 'Assign' in an earlier "
            "state (a distributed Map's child workflow cannot read the parent's variables)"
        )


class VariableScope:
    """One scope of workflow variables; reads fall through to the enclosing scopes."""

    def __init__(self, parent: VariableScope | None = None) -> None:
        self.parent = parent
        self._values: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        self._total = 0
        """The sum of `_sizes`, kept as values are stored."""
        self._lock = threading.Lock()

    def child(self) -> VariableScope:
        """A scope for one Parallel branch or inline Map iteration, reading this one."""
        return VariableScope(self)

    def lookup(self, name: str) -> Any:
        """The value of a visible variable; raises UndefinedVariable when none holds it."""
        scope: VariableScope | None = self
        while scope is not None:
            with scope._lock:
                if name in scope._values:
                    return scope._values[name]
            scope = scope.parent
        raise UndefinedVariable(name)

    def visible(self) -> dict[str, Any]:
        """Every visible variable, inner scopes shadowing outer ones (for JSONata's bindings)."""
        merged = self.parent.visible() if self.parent is not None else {}
        with self._lock:
            merged.update(self._values)
        return merged

    def assign(self, values: dict[str, Any]) -> None:
        """Store a state's new values at once (they were all evaluated before any is stored).

        StatesError (States.DataLimitExceeded) when a value, the values together or the execution's
        stored variables would pass their limit; nothing is stored then."""
        if not values:
            return
        sizes = {name: json_size(value) for name, value in values.items()}
        for name, size in sizes.items():
            if size > MAX_VARIABLE_BYTES:
                raise _too_large(
                    f"the variable '{name}' would hold {size} bytes", MAX_VARIABLE_BYTES, "one variable"
                )
        combined = sum(sizes.values())
        if combined > MAX_ASSIGN_BYTES:
            raise _too_large(
                f"the variables of one Assign total {combined} bytes", MAX_ASSIGN_BYTES, "one Assign"
            )
        outer = self.parent.stored_bytes() if self.parent is not None else 0
        with self._lock:
            total = self._total + combined - sum(self._sizes.get(name, 0) for name in sizes)
            if outer + total > MAX_EXECUTION_VARIABLE_BYTES:
                raise _too_large(
                    f"the stored variables would total {outer + total} bytes",
                    MAX_EXECUTION_VARIABLE_BYTES,
                    "an execution",
                )
            self._store(values, sizes, total)

    def restore(self, values: dict[str, Any]) -> None:
        """Put back variables an execution held before (a redrive): they were within the limits then."""
        sizes = {name: json_size(value) for name, value in values.items()}
        with self._lock:
            total = self._total + sum(sizes.values()) - sum(self._sizes.get(name, 0) for name in sizes)
            self._store(values, sizes, total)

    def _store(self, values: dict[str, Any], sizes: dict[str, int], total: int) -> None:
        self._values.update(values)
        self._sizes.update(sizes)
        self._total = total

    def stored_bytes(self) -> int:
        """The size of the variables of this scope and the scopes around it."""
        outer = self.parent.stored_bytes() if self.parent is not None else 0
        with self._lock:
            return outer + self._total


def _too_large(what: str, limit: int, per: str) -> StatesError:
    return StatesError(
        DATA_LIMIT_EXCEEDED,
        f"{what}, past the {limit} bytes Step Functions allows for {per} (workflow variables: Limits)",
    )


_CURRENT: ContextVar[VariableScope | None] = ContextVar("burstmap_variable_scope", default=None)


def current_scope() -> VariableScope:
    """The scope of the state being run (an empty one outside any execution, e.g. in unit tests)."""
    scope = _CURRENT.get()
    return scope if scope is not None else VariableScope()


@contextmanager
def using_scope(scope: VariableScope) -> Iterator[VariableScope]:
    """Run a (sub-)state machine with `scope` as the current scope, restoring the previous one after."""
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


def validate_assign(assign: Any, field: str, state_name: str, *, jsonpath: bool) -> None:
    """Refuse at load time an Assign that is not an object of valid, unreserved variable names."""
    if not isinstance(assign, dict):
        raise DefinitionError(
            f"{field} in state '{state_name}' must be an object of variable names and values"
        )
    for key in assign:
        name = key[:-2] if jsonpath and key.endswith(".$") else key
        if not is_variable_name(name):
            raise DefinitionError(
                f"{field} in state '{state_name}': {name!r} is not a valid variable name (a Unicode "
                f"identifier of at most {MAX_NAME_LENGTH} characters: letters, digits and underscores, "
                "not starting with a digit; a part of a variable such as 'x.y' cannot be assigned)"
            )
        if name in RESERVED_NAMES:
            raise DefinitionError(f"{field} in state '{state_name}': '${name}' is reserved by Step Functions")


def read_variable_path(path: str) -> tuple[Any, str]:
    """(value of the variable, the rest of the path as a `$...` path into it) for a `$name...` path."""
    match = VARIABLE_PATH.match(path)
    if match is None:  # pragma: no cover - callers check is_variable_path first
        raise ValueError(f"{path!r} is not a variable reference")
    return current_scope().lookup(match.group(1)), "$" + match.group(2)


def is_variable_path(path: Any) -> bool:
    """`$name...` (not `$`, `$.`, `$[` or `$$`): a JSONPath reference to a workflow variable."""
    return isinstance(path, str) and VARIABLE_PATH.match(path) is not None
