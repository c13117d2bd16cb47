"""Choice rules of the JSONPath query language: And/Or/Not and every comparison operator.

AWS semantics followed here (Step Functions developer guide, "Choice workflow state"):

* a value of the wrong type for the operator makes the comparison false ("Step Functions doesn't
  attempt to match a numeric field to a string value"), it is not an error;
* a ``Variable`` (or a ``...Path`` operand) that matches nothing fails the state with
  ``States.Runtime`` and the cause ``Invalid path '<path>': The choice state's condition path
  references an invalid value.``, except under ``IsPresent``;
* strings compare like Java's ``String.compareTo`` (UTF-16 code units);
* ``StringMatches`` knows one wildcard, ``*``, escaped as ``\\*`` (and ``\\\\`` for a backslash);
* timestamps are RFC 3339 with an uppercase ``T`` and an uppercase ``Z`` or a numeric offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from burstmap.local.core.errors import DefinitionError, StateRuntimeError
from burstmap.local.query.jsonpath import PathNotFound, read_argument_path
from burstmap.local.query.variables import is_variable_path

__all__ = ["InvalidChoiceRule", "evaluate_choice_rule", "parse_timestamp", "validate_choice_rule"]

_TYPES = ("Boolean", "Numeric", "String", "Timestamp")
_RELATIONS = ("Equals", "GreaterThan", "GreaterThanEquals", "LessThan", "LessThanEquals")
_VALUE_OPERATORS: dict[str, tuple[str, str]] = {
    f"{kind}{relation}": (kind, relation)
    for kind in _TYPES
    for relation in _RELATIONS
    if kind != "Boolean" or relation == "Equals"
}
_VALUE_OPERATORS["StringMatches"] = ("String", "Matches")
_PATH_OPERATORS = {f"{name}Path": spec for name, spec in _VALUE_OPERATORS.items() if name != "StringMatches"}
_TYPE_TESTS = ("IsBoolean", "IsNull", "IsNumeric", "IsPresent", "IsString", "IsTimestamp")
COMPARISON_OPERATORS = frozenset(_VALUE_OPERATORS) | frozenset(_PATH_OPERATORS) | frozenset(_TYPE_TESTS)

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


class InvalidChoiceRule(DefinitionError):
    """A Choice rule AWS would refuse when the state machine is created."""


def _missing_path(path: str) -> Exception:
    return StateRuntimeError(
        f"Invalid path '{path}': The choice state's condition path references an invalid value."
    )


# ---------------------------------------------------------------------------------------------
# Values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@lru_cache(maxsize=4096)
def parse_timestamp(text: str) -> tuple[int, int] | None:
    """(epoch seconds, nanoseconds) of an RFC 3339 timestamp AWS accepts, or None."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    offset = timedelta(0)
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 18 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError:
        return None
    epoch = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return epoch.days * 86400 + epoch.seconds, int(fraction.ljust(9, "0")) if fraction else 0


def _utf16(text: str) -> bytes:
    """Big-endian UTF-16 bytes order strings exactly like Java's compareTo on char units."""
    return text.encode("utf-16-be", "surrogatepass")


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern) and pattern[index + 1] in "*\\":
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _compare(kind: str, relation: str, value: Any, operand: Any) -> bool:
    """One typed comparison; any value of the wrong type gives False, as on AWS."""
    left: Any
    right: Any
    if kind == "Boolean":
        return isinstance(value, bool) and isinstance(operand, bool) and value == operand
    if kind == "Numeric":
        if not (_is_number(value) and _is_number(operand)):
            return False
        left, right = value, operand
    elif kind == "String":
        if not (isinstance(value, str) and isinstance(operand, str)):
            return False
        if relation == "Matches":
            return _wildcard(operand).fullmatch(value) is not None
        left, right = _utf16(value), _utf16(operand)
    else:  # Timestamp
        left = parse_timestamp(value) if isinstance(value, str) else None
        right = parse_timestamp(operand) if isinstance(operand, str) else None
        if left is None or right is None:
            return False
    if relation == "Equals":
        return left == right
    if relation == "GreaterThan":
        return left > right
    if relation == "GreaterThanEquals":
        return left >= right
    if relation == "LessThan":
        return left < right
    return left <= right


def _type_test(operator: str, value: Any) -> bool:
    if operator == "IsNull":
        return value is None
    if operator == "IsBoolean":
        return isinstance(value, bool)
    if operator == "IsNumeric":
        return _is_number(value)
    if operator == "IsString":
        return isinstance(value, str)
    return isinstance(value, str) and parse_timestamp(value) is not None  # IsTimestamp


def _read(path: str, data: Any, context: Any) -> Any:
    try:
        return read_argument_path(path, data, context)
    except PathNotFound:
        raise _missing_path(path) from None


# ---------------------------------------------------------------------------------------------
# Rules


def evaluate_choice_rule(rule: dict[str, Any], data: Any, context: Any) -> bool:
    """Whether a (validated) Choice rule matches the state's effective input.

    ``data`` is what ``$`` refers to, ``context`` what ``$$`` refers to. Raises the engine's
    ``StatesError('States.Runtime', ...)`` when a path the rule needs is missing.
    """
    if "And" in rule:
        return all(evaluate_choice_rule(sub, data, context) for sub in rule["And"])
    if "Or" in rule:
        return any(evaluate_choice_rule(sub, data, context) for sub in rule["Or"])
    if "Not" in rule:
        return not evaluate_choice_rule(rule["Not"], data, context)
    operator = _operator_of(rule)
    variable = rule["Variable"]
    expected = rule[operator]
    if operator == "IsPresent":
        try:
            read_argument_path(variable, data, context)
        except PathNotFound:
            return expected is False
        return expected is True
    value = _read(variable, data, context)
    if operator in _TYPE_TESTS:
        return _type_test(operator, value) == expected
    if operator in _PATH_OPERATORS:
        kind, relation = _PATH_OPERATORS[operator]
        return _compare(kind, relation, value, _read(expected, data, context))
    kind, relation = _VALUE_OPERATORS[operator]
    return _compare(kind, relation, value, expected)


def _operator_of(rule: dict[str, Any]) -> str:
    operators = [key for key in rule if key in COMPARISON_OPERATORS]
    if len(operators) != 1:
        raise InvalidChoiceRule(f"a Choice rule needs exactly one comparison operator, found {operators}")
    return operators[0]


def _is_reference_path(value: Any) -> bool:
    """`$`, `$.a`, `$[0]`, `$$...` or a workflow variable `$name...` (the guide: "You can reference a
    variable in any field that accepts a JSONPath expression", Variable and the ...Path operands
    included)."""
    return isinstance(value, str) and (
        value == "$" or value.startswith(("$.", "$[", "$$")) or is_variable_path(value)
    )


def validate_choice_rule(rule: Any, state_name: str, *, top_level: bool = True) -> None:
    """Refuse, naming the state and the field, a Choice rule AWS would not accept.

    Top-level rules must have ``Next``; rules nested in And/Or/Not must not.
    """
    where = f"in the Choices of state {state_name!r}"
    if not isinstance(rule, dict):
        raise InvalidChoiceRule(f"a Choice rule must be a JSON object {where}, got {rule!r}")
    if top_level and not isinstance(rule.get("Next"), str):
        raise InvalidChoiceRule(f"a top-level Choice rule needs a 'Next' state name {where}: {rule!r}")
    if not top_level and "Next" in rule:
        raise InvalidChoiceRule(f"'Next' is allowed only on top-level Choice rules {where}: {rule!r}")
    combinators = [key for key in ("And", "Or", "Not") if key in rule]
    allowed = {"Next", "Comment"}
    if combinators:
        if len(combinators) > 1 or "Variable" in rule:
            raise InvalidChoiceRule(f"a Choice rule has either one of And/Or/Not or a Variable {where}")
        combinator = combinators[0]
        operand = rule[combinator]
        if combinator == "Not":
            validate_choice_rule(operand, state_name, top_level=False)
        else:
            if not isinstance(operand, list) or not operand:
                raise InvalidChoiceRule(f"'{combinator}' must be a non-empty array of Choice rules {where}")
            for sub in operand:
                validate_choice_rule(sub, state_name, top_level=False)
        allowed.add(combinator)
    else:
        variable = rule.get("Variable")
        if not _is_reference_path(variable):
            raise InvalidChoiceRule(
                "a Choice rule needs 'Variable' set to a reference path ('$...', '$$...' or a variable "
                f"'$name') {where}: {rule!r}"
            )
        operator = _operator_of_for_validation(rule, where)
        _validate_operand(operator, rule[operator], where)
        allowed |= {"Variable", operator}
    unknown = sorted(set(rule) - allowed)
    if unknown:
        raise InvalidChoiceRule(f"unsupported field(s) {unknown} in a Choice rule {where}")


def _operator_of_for_validation(rule: dict[str, Any], where: str) -> str:
    operators = [key for key in rule if key in COMPARISON_OPERATORS]
    if len(operators) != 1:
        raise InvalidChoiceRule(
            f"a Choice rule needs exactly one comparison operator {where}, found {operators or 'none'} "
            f"(known: {', '.join(sorted(COMPARISON_OPERATORS))})"
        )
    return operators[0]


def _validate_operand(operator: str, operand: Any, where: str) -> None:
    problem = None
    if operator in _TYPE_TESTS:
        if not isinstance(operand, bool):
            problem = "must be true or false"
    elif operator in _PATH_OPERATORS:
        if not _is_reference_path(operand):
            problem = "must be a reference path ('$...', '$$...' or a variable '$name')"
    else:
        kind, _ = _VALUE_OPERATORS[operator]
        if kind == "Boolean" and not isinstance(operand, bool):
            problem = "must be true or false"
        elif kind == "Numeric" and not _is_number(operand):
            problem = "must be a number"
        elif kind == "String" and not isinstance(operand, str):
            problem = "must be a string"
        elif kind == "Timestamp" and not (isinstance(operand, str) and parse_timestamp(operand)):
            problem = "must be an RFC 3339 timestamp such as 2016-08-18T17:33:00Z"
    if problem:
        raise InvalidChoiceRule(f"'{operator}' {problem} {where}, got {operand!r}")
