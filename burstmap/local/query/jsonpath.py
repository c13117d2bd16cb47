"""JSONPath reference paths: reading them (InputPath, OutputPath, `...Path` fields, intrinsic
arguments, Choice variables) and writing a result into the input (ResultPath).

Definite paths (`$.a.b[0]['c']`) are walked here so that a missing field gives AWS's messages
(which come from the Java Jayway JsonPath library that Step Functions uses):
"No results for path: $['a']" when the last field is missing, "Missing property in path $['a']"
when an intermediate one is. Indefinite paths (wildcards, slices, filters, recursive descent) go
to jsonpath-ng's extended parser and give a list, empty when nothing matches (as AWS does for
`$.items[*]` and `$.items[1:]` over a missing field).

`$$` reads the context object and `$name` a workflow variable (variables.py). Errors are
StateRuntimeError (States.Runtime); the state runner prefixes the cause with the state name and
its event id. Payload templates (`"x.$"` keys) are in payload_template.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from burstmap.local.core.errors import (
    RESULT_PATH_MATCH_FAILURE,
    DefinitionError,
    StateRuntimeError,
    StatesError,
)
from burstmap.local.core.json_text import to_json, value_text
from burstmap.local.query.variables import UndefinedVariable, is_variable_path, read_variable_path

_MISSING = object()


class PathNotFound(Exception):
    """A definite path with no value: `path` as written, `message` the Jayway-style reason."""

    def __init__(self, path: str, message: str | None = None) -> None:
        super().__init__(message or path)
        self.path = path
        self.message = message or f"No results for path: {path}"


# ---------------------------------------------------------------------------------------- parsing

_NAME = re.compile(r"[^.\[\]\s'\"]+")


@lru_cache(maxsize=4096)
def _definite_steps(path: str) -> tuple[str | int, ...] | None:
    """The steps of a definite path after its root ("$" or "$$"), or None if the path is indefinite."""
    position = 2 if path.startswith("$$") else 1
    steps: list[str | int] = []
    while position < len(path):
        char = path[position]
        if char == ".":
            match = _NAME.match(path, position + 1)
            if not match or match.group() == "*":
                return None
            steps.append(match.group())
            position = match.end()
        elif char == "[":
            if path.startswith(("['", '["'), position):
                quote = path[position + 1]
                end = position + 2
                text: list[str] = []
                while end < len(path) and path[end] != quote:
                    if path[end] == "\\" and end + 1 < len(path) and path[end + 1] == quote:
                        end += 1  # \' (or \") inside a quoted bracket key stands for the quote
                    text.append(path[end])
                    end += 1
                if not path.startswith(quote + "]", end):
                    return None
                steps.append("".join(text))
                position = end + 2
            else:
                close = path.find("]", position)
                inner = path[position + 1 : close] if close > 0 else ""
                if not re.fullmatch(r"-?\d+", inner.strip()):
                    return None
                steps.append(int(inner))
                position = close + 1
        else:
            return None
    return tuple(steps)


def _bracket(steps: tuple[str | int, ...]) -> str:
    """Jayway's normalised form of a path prefix: $['a'][0]['b']."""
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f"['{step}']" for step in steps)


def _walk(value: Any, steps: tuple[str | int, ...], path: str) -> Any:
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        if isinstance(step, int):
            if isinstance(value, list) and -len(value) <= step < len(value):
                value = value[step]
                continue
        elif isinstance(value, dict) and step in value:
            value = value[step]
            continue
        if last:
            raise PathNotFound(path, f"No results for path: {_bracket(steps)}")
        raise PathNotFound(path, f"Missing property in path {_bracket(steps[: depth + 1])}")
    return value


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> Any:
    from jsonpath_ng.ext import parse

    return parse(expression)


def _matches(path: str, root: Any) -> list[Any]:
    """Every value a path (its `$$` read as `$`) matches in `root`, by jsonpath-ng."""
    expression = "$" + path[2:] if path.startswith("$$") else path
    try:
        compiled = _compiled(expression)
    except Exception as exc:  # jsonpath-ng raises several unrelated exception types
        raise StateRuntimeError(f"Invalid path '{path}': {exc}") from None
    return [match.value for match in compiled.find(root)]


def is_path(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("$")


def _root(path: str, data: Any, context: Any) -> Any:
    return context if path.startswith("$$") else data


def lookup(path: str, data: Any, context: Any) -> Any:
    """Value at a path; raises PathNotFound (with Jayway's wording) when a definite path has none."""
    if not is_path(path):
        raise StateRuntimeError(f"Invalid path '{path}': a path starts with '$' or '$$'")
    if is_variable_path(path):
        try:
            root, inner = read_variable_path(path)  # `$name.a.b`: the path `$.a.b` into the variable
        except UndefinedVariable as exc:
            raise PathNotFound(path, exc.message) from None
    else:
        root, inner = _root(path, data, context), path
    steps = _definite_steps(inner)
    if steps is None:
        return _matches(inner, root)
    return _walk(root, steps, inner)


def read_path(path: str, data: Any, context: Any) -> Any:
    """A reference path ("$..." or "$$..."), raising States.Runtime as InputPath/OutputPath do.

    The detail reads "Invalid path '$.x' : No results for path: $['x']", as AWS words it.
    """
    try:
        return lookup(path, data, context)
    except PathNotFound as exc:
        raise StateRuntimeError(f"Invalid path '{path}' : {exc.message}") from None


def read_field_path(path: str, field: str, data: Any, context: Any) -> Any:
    """A path given in a named field (a Parameters `x.$` key, ErrorPath, CausePath): AWS quotes the
    field and the state's input when it finds nothing."""
    try:
        return lookup(path, data, context)
    except PathNotFound as exc:
        if is_variable_path(path):
            raise StateRuntimeError(
                f"The JSONPath '{path}' specified for the field '{field}' could not be resolved: "
                f"{exc.message}"
            ) from None
        raise StateRuntimeError(
            f"The JSONPath '{path}' specified for the field '{field}' could not be found in the input "
            f"'{to_json(data)}'"
        ) from None


_INDEFINITE = re.compile(r"\*|\.\.|\?\(|\[[^\]'\"]*[:,][^\]'\"]*\]")


def read_argument_path(path: str, data: Any, context: Any) -> Any:
    """Value of a reference path as AWS resolves an intrinsic argument or a Choice ``Variable``.

    The path may start with a workflow variable (``$order.number``): the guide allows variables in
    every JSONPath field but ResultPath, intrinsic arguments included. A definite path that
    matches nothing (including an index past the end) raises ``PathNotFound``; an indefinite one
    (wildcard, filter, slice, union, ``..``) yields the list of matches, possibly empty.
    """
    if is_variable_path(path):
        try:
            target, own = read_variable_path(path)  # `$name.a`: the path `$.a` into the variable
        except UndefinedVariable as exc:
            raise PathNotFound(path, exc.message) from None
    else:
        target, own = (context, path[1:]) if path.startswith("$$") else (data, path)
    if own == "$":
        return target
    matches = _matches(own, target)
    if _INDEFINITE.search(own):
        return matches
    if not matches:
        raise PathNotFound(path)
    return matches[0]


_INTEGER_TEXT = re.compile(r"^-?\d+$")


def read_integer_path(field: str, path: str, data: Any, context: Any) -> int:
    """An integer field given through a `...Path`: JSON integers and integer strings are accepted.

    AWS accepted the string "2" for MaxItemsPerBatchPath and refused 1.5 and "NoNumber" with
    `The MaxItemsPath field refers to value "1.5" which is not a valid integer: $.MaxItems`.
    """
    value = read_path(path, data, context)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    raise StateRuntimeError(
        f'The {field} field refers to value "{value_text(value)}" which is not a valid integer: {path}'
    )


def read_number_path(field: str, path: str, data: Any, context: Any) -> float:
    """A number field given through a `...Path` (ToleratedFailurePercentagePath)."""
    value = read_path(path, data, context)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise StateRuntimeError(
        f'The {field} field refers to value "{value_text(value)}" which is not a valid float: {path}'
    )


def field_or_path(
    block: dict[str, Any],
    name: str,
    data: Any,
    context: Any,
    *,
    default: Any = None,
    read: Callable[[str, str, Any, Any], Any] = read_integer_path,
) -> Any:
    """A field given either as `name` (a literal) or as `namePath` (a path into the state's input):
    the one resolution of every "X or XPath" pair (MaxConcurrency, ToleratedFailureCount, MaxItems,
    MaxItemsPerBatch, ...). `read(field, path, data, context)` reads and checks the path's value."""
    path_field = f"{name}Path"
    if path_field in block:
        return read(path_field, block[path_field], data, context)
    return block.get(name, default)


# ------------------------------------------------------------------------ Input/Result/OutputPath

NOT_GIVEN: Any = _MISSING
"""Pass `state.get("InputPath", NOT_GIVEN)`: an absent field differs from an explicit null."""


def apply_input_path(data: Any, path: Any, context: Any) -> Any:
    """InputPath: absent means "$", null means {} (the state sees an empty object)."""
    if path is NOT_GIVEN or path == "$":
        return data
    if path is None:
        return {}
    return read_path(path, data, context)


apply_output_path: Callable[[Any, Any, Any], Any] = apply_input_path
"""OutputPath follows the same rules: absent means "$", null means {}."""


def write_result(data: Any, result: Any, result_path: str | None) -> Any:
    """ResultPath: where the state's result goes in its input.

    None keeps the input; "$" replaces it; "$.a.b" writes at that place in a copy of the input,
    creating missing objects on the way (an existing non-object in the way is an error).
    """
    if result_path is None:
        return data
    if result_path == "$":
        return result
    if result_path.startswith("$$"):
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE, f"ResultPath '{result_path}' cannot refer to the context object"
        )
    steps = _definite_steps(result_path) if result_path.startswith("$") else None
    if steps is None or not steps:
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE, f"ResultPath '{result_path}' must be a definite reference path"
        )
    output = copy.deepcopy(data) if isinstance(data, (dict, list)) else data
    if not isinstance(output, dict) and not (isinstance(output, list) and isinstance(steps[0], int)):
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ResultPath '{result_path}' to input '{to_json(data)}': "
            "the input is not an object",
        )
    if not _write_at(output, steps, result):
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ResultPath '{result_path}' to input '{to_json(data)}'",
        )
    return output


def _write_at(target: Any, steps: tuple[str | int, ...], result: Any) -> bool:
    """Write `result` at `steps` inside `target`, creating missing objects; False when an array
    index is out of range or a non-object is in the way."""
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        if isinstance(step, int):
            if not isinstance(target, list) or not -len(target) <= step < len(target):
                return False
        elif not isinstance(target, dict):
            return False
        elif not last and step not in target:
            target[step] = {}
        if last:
            target[step] = result
        else:
            target = target[step]
    return True


def validate_reference_path(path: Any, field: str, state_name: str) -> None:
    """A ResultPath must be a definite path into the input, not a variable, at load time (AWS rejects
    the definition otherwise)."""
    if path is None:
        return
    if not isinstance(path, str) or not path.startswith("$") or path.startswith("$$"):
        raise DefinitionError(
            f"{field} in state '{state_name}' must be null or a reference path starting with '$'"
        )
    if is_variable_path(path):
        raise DefinitionError(
            f"{field} in state '{state_name}' is {path!r}, a workflow variable: variables cannot be used in "
            "ResultPath (it places the result in the state's input; assign a variable with Assign instead)"
        )
    if _definite_steps(path) is None:
        raise DefinitionError(
            f"{field} in state '{state_name}' must be a definite path (no wildcards, slices or filters), "
            f"got {path!r}"
        )
