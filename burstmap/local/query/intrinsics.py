"""The JSONPath query language's intrinsic functions (``States.Format``, ``States.Array``, ...): evaluation.

The call syntax is parsed by intrinsic_syntax.py; path arguments are read by jsonpath.py.
Behaviour follows the AWS documentation ("Intrinsic functions for JSONPath states") and the
conformance recordings in ``shared/conformance/cases/intrinsic_functions``. Runtime failures raise
``States.Runtime`` (what AWS reports, not ``States.IntrinsicFailure``) with a cause of the form
``The function '<expression as written>' had the following error: <detail>``; the state runner
prefixes ``An error occurred while executing the state '<name>' (entered at the event id #N). ``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.core.json_text import to_json
from burstmap.local.query.intrinsic_syntax import (
    Call,
    IntrinsicSyntaxError,
    Literal,
    PathArg,
    is_intrinsic,
    parse_intrinsic,
)
from burstmap.local.query.jsonpath import PathNotFound, read_argument_path
from burstmap.local.query.variables import is_variable_path

__all__ = ["HASH_ALGORITHMS", "IntrinsicSyntaxError", "evaluate_intrinsic", "is_intrinsic", "parse_intrinsic"]

MAX_RANGE_ITEMS = 1000
MAX_ENCODE_CHARS = 10_000
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

HASH_ALGORITHMS: dict[str, Callable[..., Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
"""The digests States.Hash (and JSONata's $hash) compute, by the names AWS accepts."""


# ---------------------------------------------------------------------------------------------
# Evaluation


class _InvalidArguments(Exception):
    """A function received arguments it cannot use; AWS reports 'Invalid arguments in <name>'."""


def evaluate_intrinsic(expression: str, data: Any, context: Any) -> Any:
    """Evaluate an intrinsic call such as ``States.Format('{}', $.a)`` against a state's input.

    ``data`` is what ``$`` refers to and ``context`` what ``$$`` refers to. Raises the engine's
    ``StatesError('States.Runtime', cause)`` on failure, with the cause wording AWS uses.
    """
    try:
        tree = parse_intrinsic(expression)
    except IntrinsicSyntaxError as exc:
        raise StateRuntimeError(str(exc)) from None
    try:
        return _evaluate(tree, data, context)
    except PathNotFound as missing:
        # AWS names a $$ argument as if it were a $ path, and quotes the state input.
        field = "$" + missing.path[2:] if missing.path.startswith("$$") else missing.path
        detail = (
            missing.message
            if is_variable_path(missing.path)
            else f"The JsonPath argument for the field '{field}' could not be found in the input "
            f"'{to_json(data)}'"
        )
    except _InvalidArguments as invalid:
        detail = f"Invalid arguments in {invalid}"
    raise StateRuntimeError(f"The function '{expression}' had the following error: {detail}")


def _evaluate(node: Literal | PathArg | Call, data: Any, context: Any) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, PathArg):
        return read_argument_path(node.path, data, context)
    args = [_evaluate(arg, data, context) for arg in node.args]
    if node.name == "States.Format":
        first = node.args[0]
        template = first.raw if isinstance(first, Literal) and first.raw is not None else args[0]
        return _format(template, args[1:])
    try:
        return _FUNCTIONS[node.name](*args)
    except _InvalidArguments:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        raise _InvalidArguments(node.name) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _java_round(value: Any, name: str) -> int:
    """Java's Math.round (half up: 1.5 -> 2, -1.5 -> -1), what AWS applies to non-integers."""
    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise _InvalidArguments(name)
    if isinstance(value, int):
        return value
    return math.floor(Decimal(value) + Decimal("0.5"))


def _require(condition: bool, name: str) -> None:
    if not condition:
        raise _InvalidArguments(name)


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: booleans are not numbers, objects compare by keys, arrays by order."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


# --- States.Format ---------------------------------------------------------------------------


def _java_double(value: float) -> str:
    """Java's Double.toString, which AWS uses to print a non-integer number (1.1, 1.0E7)."""
    if value == 0:
        return "0.0" if math.copysign(1, value) > 0 else "-0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    coefficient, exponent = _shortest_scientific(value).split("e")
    if "." not in coefficient:
        coefficient += ".0"
    return f"{coefficient}E{int(exponent)}"


def _shortest_scientific(value: float) -> str:
    """The fewest digits that read back as the same double, in Python's 'e' notation."""
    for precision in range(17):
        text = f"{value:.{precision}e}"
        if float(text) == value:
            return text
    return f"{value:.16e}"


def _format_value(value: Any, nested: bool = False) -> str:
    """How AWS prints a value into States.Format: strings bare, objects as Java's Map.toString."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item, True) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_format_value(item, True)}" for key, item in value.items()) + "}"
    return str(value)


def _format(template: Any, values: list[Any]) -> str:
    name = "States.Format"
    _require(isinstance(template, str), name)
    pieces: list[str] = []
    used = 0
    index = 0
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template):
            pieces.append(template[index + 1])
            index += 2
            continue
        if char == "{":
            _require(template.startswith("{}", index), name)
            _require(used < len(values), name)
            pieces.append(_format_value(values[used]))
            used += 1
            index += 2
            continue
        _require(char != "}", name)
        pieces.append(char)
        index += 1
    _require(used == len(values), name)
    return "".join(pieces)


# --- the other functions ---------------------------------------------------------------------


def _string_to_json(text: Any) -> Any:
    _require(isinstance(text, str), "States.StringToJson")
    if not text.strip():
        return None  # recorded: "" and " " give null
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise _InvalidArguments("States.StringToJson") from None
    if isinstance(value, float) and value == 0 and not re.search(r"[.eE]", text):
        return 0  # "-0" gives 0
    return value


def _json_to_string(value: Any) -> str:
    return to_json(value)


def _array(*values: Any) -> list[Any]:
    return list(values)


def _array_partition(array: Any, size: Any) -> list[list[Any]]:
    name = "States.ArrayPartition"
    _require(isinstance(array, list), name)
    chunk = _java_round(size, name)
    _require(chunk > 0, name)
    return [array[start : start + chunk] for start in range(0, len(array), chunk)]


def _array_contains(array: Any, value: Any) -> bool:
    _require(isinstance(array, list), "States.ArrayContains")
    return any(_json_equal(item, value) for item in array)


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    name = "States.ArrayRange"
    first, last, increment = (_java_round(v, name) for v in (start, end, step))
    _require(increment != 0, name)
    count = (last - first) // increment + 1 if (last - first) * increment >= 0 else 0
    _require(count <= MAX_RANGE_ITEMS, name)
    return [first + i * increment for i in range(count)]


def _array_get_item(array: Any, index: Any) -> Any:
    name = "States.ArrayGetItem"
    _require(isinstance(array, list), name)
    _require(_is_number(index) and float(index).is_integer(), name)
    position = int(index)
    _require(0 <= position < len(array), name)
    return array[position]


def _array_length(array: Any) -> int:
    _require(isinstance(array, list), "States.ArrayLength")
    return len(array)


def _array_unique(array: Any) -> list[Any]:
    _require(isinstance(array, list), "States.ArrayUnique")
    unique: list[Any] = []
    for item in array:
        if not any(_json_equal(item, seen) for seen in unique):
            unique.append(item)
    return unique


def _base64_encode(text: Any) -> str:
    name = "States.Base64Encode"
    _require(isinstance(text, str) and len(text) <= MAX_ENCODE_CHARS, name)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _base64_decode(text: Any) -> str:
    name = "States.Base64Decode"
    _require(isinstance(text, str) and len(text) <= MAX_ENCODE_CHARS, name)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _InvalidArguments(name) from None


def _hash(text: Any, algorithm: Any) -> str:
    name = "States.Hash"
    _require(isinstance(text, str) and len(text) <= MAX_ENCODE_CHARS, name)
    _require(isinstance(algorithm, str) and algorithm in HASH_ALGORITHMS, name)
    return HASH_ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def _json_merge(first: Any, second: Any, deep: Any) -> dict[str, Any]:
    name = "States.JsonMerge"
    _require(isinstance(first, dict) and isinstance(second, dict), name)
    _require(deep is False, name)  # only shallow merging exists on AWS
    return {**first, **second}


def _math_random(start: Any, end: Any, seed: Any = None) -> int:
    name = "States.MathRandom"
    low, high = _java_round(start, name), _java_round(end, name)
    _require(INT32_MIN <= low < high <= INT32_MAX, name)
    generator = random.Random(_java_round(seed, name)) if seed is not None else random.SystemRandom()
    return generator.randrange(low, high)  # start inclusive, end exclusive


def _math_add(left: Any, right: Any) -> int:
    name = "States.MathAdd"
    first, second = _java_round(left, name), _java_round(right, name)
    _require(INT32_MIN <= first <= INT32_MAX and INT32_MIN <= second <= INT32_MAX, name)
    return first + second


def _string_split(text: Any, delimiters: Any) -> list[str]:
    name = "States.StringSplit"
    _require(isinstance(text, str) and isinstance(delimiters, str), name)
    if not delimiters:
        return [text] if text else []
    pattern = "[" + re.escape(delimiters) + "]"
    return [token for token in re.split(pattern, text) if token]


def _uuid() -> str:
    return str(uuid.uuid4())


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}
