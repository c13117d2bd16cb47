"""The JSONata query language: evaluating `{% ... %}` expressions against `$states` and the variables.

A state uses JSONata when its `QueryLanguage` (or, when it has none, the state machine's top-level
`QueryLanguage`) is "JSONata" (AWS developer guide, "Transforming data with JSONata in Step
Functions"):

* A string is evaluated only when it is entirely `{% <expression> %}` (no space before `{%` or after
  `%}`), at any depth of an object or array; every other value is a literal (`"$.a"`, `"x.$"` keys
  and intrinsic-looking strings included).
* Expressions see `$states` = {input, context, result (Output and Assign after the work),
  errorOutput (in a Catch clause)} and the workflow variables as `$name`. `$eval` is not available
  (use `$parse`); Step Functions adds `$partition`, `$range`, `$hash`, `$random` (optional seed),
  `$uuid` and `$parse`.
* An expression that returns nothing fails the state with `States.QueryEvaluationError`: "The
  JSONata expression '<expr>' specified for the field '<field>' returned nothing (undefined).",
  where the field is named from the state with `/` before a key and `[i]` for an index
  (`Output/error`, `Choices[0]/Condition`, `Catch[1]/Output/v`), as AWS words it.

Expressions are evaluated with jsonata-python (imported lazily: JSONPath-only runs never load it),
one parsed instance per thread and expression, because the library keeps per-thread state. How
each state uses its JSONata fields (Arguments, Output, Assign, Items, ...) is in flow/ and states/.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import DefinitionError, QueryEvaluationError
from burstmap.local.query.intrinsics import HASH_ALGORITHMS
from burstmap.local.query.variables import current_scope

JSONATA = "JSONata"
JSONPATH = "JSONPath"


# ------------------------------------------------------------------------------------ expressions


def is_expression(value: Any) -> bool:
    """True for a string that is entirely `{% ... %}`: the only strings JSONata states evaluate."""
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def expression_text(value: str) -> str:
    """The expression inside `{% ... %}`, as AWS quotes it in error causes (surrounding spaces off)."""
    return value[2:-2].strip()


class _FunctionError(ValueError):
    """A Step Functions JSONata function called with arguments it refuses."""


def _plain(value: Any) -> Any:
    """A JSONata value (sequences, its null) as plain JSON-like Python (lists, None)."""
    from jsonata.utils import Utils

    if value is Utils.NULL_VALUE:
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _integer(value: Any, function: str, argument: str) -> int:
    """A number argument rounded towards zero, as Step Functions' functions take them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _FunctionError(f"{function}: the argument '{argument}' must be a number, got {value!r}")
    return int(value)


def _partition(array: Any = None, size: Any = None) -> Any:
    """$partition(array, chunkSize): the array in chunks of chunkSize, the last one holding the rest."""
    array = _plain(array)
    if not isinstance(array, list):
        raise _FunctionError(f"$partition: the first argument must be an array, got {array!r}")
    chunk = _integer(size, "$partition", "chunkSize")
    if chunk < 0:
        raise _FunctionError(f"$partition: the chunk size must be positive, got {size!r}")
    if chunk == 0 or not array:
        return None  # undefined, as AWS answers
    return [array[start : start + chunk] for start in range(0, len(array), chunk)]


def _range(start: Any = None, end: Any = None, step: Any = None) -> Any:
    """$range(start, end, step): start, start+step, ... up to end inclusive; one value comes back bare."""
    if step is None:
        return None
    first, last = _integer(start, "$range", "start"), _integer(end, "$range", "end")
    stride = _integer(step, "$range", "step")
    if stride == 0 or (last - first) * stride < 0:
        return None
    values = list(range(first, last + (1 if stride > 0 else -1), stride))
    return values[0] if len(values) == 1 else values


def _hash(value: Any = None, algorithm: Any = None) -> Any:
    """$hash(string, algorithm): hex digest; MD5, SHA-1, SHA-256, SHA-384 or SHA-512 (case-sensitive)."""
    if algorithm is None:
        return None
    if not isinstance(value, str):
        raise _FunctionError(f"$hash: the first argument must be a string, got {_plain(value)!r}")
    if algorithm not in HASH_ALGORITHMS:
        known = ", ".join(HASH_ALGORITHMS)
        raise _FunctionError(f"$hash: the algorithm must be one of {known}, got {algorithm!r}")
    return HASH_ALGORITHMS[algorithm](value.encode("utf-8")).hexdigest()


def _random(seed: Any = None) -> float:
    """$random([seed]): a number in [0, 1); the same seed gives the same number."""
    if seed is None:
        return random.random()
    return random.Random(_integer(seed, "$random", "seed")).random()


def _uuid() -> str:
    """$uuid(): a version 4 UUID."""
    return str(uuid.uuid4())


def _parse(text: Any = None) -> Any:
    """$parse(jsonString): the JSON value the string holds (Step Functions' replacement for $eval)."""
    if not isinstance(text, str):
        raise _FunctionError(f"$parse: the argument must be a string of JSON text, got {_plain(text)!r}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _FunctionError(f"$parse: the argument is not JSON text ({exc}): {text!r}") from None


def _no_eval(*_: Any) -> Any:
    raise _FunctionError("$eval is not available in Step Functions: use $parse to read JSON text")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
    "eval": _no_eval,
}

_PER_THREAD = threading.local()
_CACHE_LIMIT = 2048


def compile_expression(text: str) -> Any:
    """A parsed expression with Step Functions' functions, cached per thread (the library keeps
    per-thread evaluation state). Raises the library's JException on a syntax error."""
    cache: dict[str, Any] | None = getattr(_PER_THREAD, "cache", None)
    if cache is None:
        cache = _PER_THREAD.cache = {}
    instance = cache.get(text)
    if instance is None:
        from jsonata import Jsonata

        instance = Jsonata(text)
        instance.set_output_convert_nulls(False)  # keep JSON null apart from undefined
        for name, function in _FUNCTIONS.items():
            instance.register_lambda(name, function)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = instance
    return instance


def check_syntax(value: str, field: str, state_name: str) -> None:
    """Refuse at load time an expression that does not parse (AWS: INVALID_JSONATA_EXPRESSION)."""
    text = expression_text(value)
    try:
        compile_expression(text)
    except Exception as exc:  # the library raises JException, and sometimes plain Python errors
        raise DefinitionError(
            f"the JSONata expression '{text}' in field '{field}' of state '{state_name}' "
            f"does not parse: {exc}"
        ) from None


_STATES_FIELD = re.compile(r"\$states\s*\.\s*(result|errorOutput)\b")


def states_fields_used(value: str) -> set[str]:
    """Which of `$states.result` and `$states.errorOutput` an expression refers to."""
    return set(_STATES_FIELD.findall(expression_text(value)))


@dataclass
class Env:
    """What expressions of one state see: `$states` and the variables as the state was entered."""

    states: dict[str, Any]
    variables: dict[str, Any]

    def with_states(self, **extra: Any) -> Env:
        return Env({**self.states, **extra}, self.variables)


def state_env(
    data: Any, context: dict[str, Any], variables: dict[str, Any] | None = None, **extra: Any
) -> Env:
    """`$states` for a state whose raw input is `data` (plus result / errorOutput when given)."""
    states = {"input": data, "context": context, **extra}
    return Env(states, current_scope().visible() if variables is None else variables)


def _to_json(value: Any, text: str, field: str) -> Any:
    from jsonata.utils import Utils

    if value is Utils.NULL_VALUE or value is None:
        return None
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryEvaluationError(
                f"The JSONata expression '{text}' specified for the field '{field}' returned a number that "
                f"JSON cannot hold ({value})."
            )
        return value
    if isinstance(value, dict):
        return {key: _to_json(item, text, field) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item, text, field) for item in value]
    raise QueryEvaluationError(
        f"The JSONata expression '{text}' specified for the field '{field}' "
        "returned an unsupported result type."
    )


def evaluate(value: str, field: str, env: Env) -> Any:
    """The JSON value of one `{% ... %}` string; QueryEvaluationError when it fails or is undefined."""
    from jsonata import Jsonata
    from jsonata.utils import Utils

    text = expression_text(value)
    try:
        instance = compile_expression(text)
    except Exception as exc:
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' does not parse: {exc}"
        ) from None
    bindings: dict[str, Any] = {
        name: Utils.NULL_VALUE if item is None else item for name, item in env.variables.items()
    }
    bindings["states"] = env.states
    Jsonata.CURRENT.jsonata = instance  # the library's functions read the evaluating instance from here
    try:
        raw = instance.evaluate(None, bindings)
    except Exception as exc:  # JException, _FunctionError, and arithmetic errors the library lets through
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' failed to evaluate: {exc}"
        ) from None
    if raw is None:
        raise QueryEvaluationError(
            f"The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined)."
        )
    return _to_json(raw, text, field)


def resolve(template: Any, field: str, env: Env) -> Any:
    """A JSONata field's value: `{% %}` strings evaluated at every depth, everything else literal."""
    if isinstance(template, str):
        return evaluate(template, field, env) if is_expression(template) else template
    if isinstance(template, dict):
        return {key: resolve(value, f"{field}/{key}", env) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(value, f"{field}[{index}]", env) for index, value in enumerate(template)]
    return template


def expressions(template: Any, field: str) -> list[tuple[str, str]]:
    """Every (field, `{% %}` string) inside a template, for load-time syntax checks."""
    if is_expression(template):
        return [(field, template)]
    if isinstance(template, dict):
        return [found for key, value in template.items() for found in expressions(value, f"{field}/{key}")]
    if isinstance(template, list):
        return [
            found for index, value in enumerate(template) for found in expressions(value, f"{field}[{index}]")
        ]
    return []


def integer_value(value: Any, field: str, env: Env, *, minimum: int) -> int:
    """An integer field given as a literal or an expression (MaxConcurrency, Seconds, TimeoutSeconds)."""
    number = resolve(value, field, env)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        bound = "a non-negative" if minimum == 0 else "a positive"
        raise QueryEvaluationError(f"The {field} field must be {bound} integer, got {json.dumps(number)}")
    return number
