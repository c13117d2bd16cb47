"""JSONPath payload templates: Parameters, ItemSelector, ResultSelector, BatchInput, Assign, ...

A key ending in ".$" takes the value of its path or intrinsic function call and loses the suffix;
objects are resolved at every depth, inside arrays too; everything else is copied as is
(Amazon States Language specification, "Payload Template").
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.query.intrinsics import evaluate_intrinsic
from burstmap.local.query.jsonpath import read_field_path


def evaluate_expression(expression: Any, field: str, data: Any, context: Any) -> Any:
    """The value of a `.$` field: a path ("$..." / "$$...") or an intrinsic function call."""
    if not isinstance(expression, str):
        raise StateRuntimeError(f"The value of the field '{field}' must be a path or an intrinsic function")
    if expression.startswith("$"):
        return read_field_path(expression, field, data, context)
    return evaluate_intrinsic(expression, data, context)


def resolve_template(template: Any, data: Any, context: Any) -> Any:
    """A payload template's value, with `data` as `$` and `context` as `$$`."""
    if isinstance(template, dict):
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                resolved[key[:-2]] = evaluate_expression(value, key, data, context)
            else:
                resolved[key] = resolve_template(value, data, context)
        return resolved
    if isinstance(template, list):
        return [resolve_template(value, data, context) for value in template]
    return template


def assigned_values(assign: dict[str, Any] | None, result: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The values a JSONPath `Assign` template gives ({} without one): `$` is the state's result."""
    if not assign:
        return {}
    return resolve_template(assign, result, context)
