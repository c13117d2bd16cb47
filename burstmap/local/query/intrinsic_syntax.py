"""The syntax of the JSONPath query language's intrinsic functions: `States.Name(arg, ...)`.

Why a hand-written parser: the call syntax is tiny but has AWS-specific string escapes
(``\\'``, ``\\{``, ``\\}``, ``\\\\``) that matter to ``States.Format``, and path arguments may
contain brackets, quotes and commas. Evaluation is in intrinsics.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_FUNCTIONS_PER_FIELD = 10  # "You can nest up to 10 intrinsic functions within a field"


class IntrinsicSyntaxError(ValueError):
    """The text is not a valid intrinsic call (AWS refuses such a definition when it is created)."""


# ---------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True)
class Literal:
    value: Any
    raw: str | None = None  # for string literals: the text between the quotes, escapes kept


@dataclass(frozen=True)
class PathArg:
    path: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Literal | PathArg | Call, ...]


_ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}

_NAME = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def is_intrinsic(text: Any) -> bool:
    """Whether a ``.$`` value is an intrinsic call (rather than a reference path)."""
    return isinstance(text, str) and _NAME.match(text.lstrip()) is not None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.calls = 0

    def fail(self, what: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(
            f"invalid intrinsic function {self.text!r}: {what} at character {self.pos + 1}; "
            "write States.Name(arg, ...) with arguments that are 'string' literals, numbers, "
            "true/false/null, paths ($... or $$...) or nested calls"
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self) -> Call:
        self.skip_space()
        call = self.call()
        self.skip_space()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos :]!r}")
        if self.calls > MAX_FUNCTIONS_PER_FIELD:
            raise IntrinsicSyntaxError(
                f"invalid intrinsic function {self.text!r}: {self.calls} function calls in one field; "
                f"AWS allows at most {MAX_FUNCTIONS_PER_FIELD}, split it over several states"
            )
        return call

    def call(self) -> Call:
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a function name such as States.Format")
        name = match.group(0)
        if name not in _ARITY:
            raise self.fail(f"unknown intrinsic function {name!r} (known: {', '.join(sorted(_ARITY))})")
        self.pos = match.end()
        self.calls += 1
        self.skip_space()
        if not self.text.startswith("(", self.pos):
            raise self.fail(f"expected '(' after {name}")
        self.pos += 1
        args: list[Literal | PathArg | Call] = []
        self.skip_space()
        if self.text.startswith(")", self.pos):
            self.pos += 1
        else:
            while True:
                self.skip_space()
                args.append(self.argument())
                self.skip_space()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                if self.text.startswith(")", self.pos):
                    self.pos += 1
                    break
                raise self.fail("expected ',' or ')'")
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            upper = "or more" if high is None else f"to {high}"
            expected = f"{low}" if low == high else f"{low} {upper}"
            raise IntrinsicSyntaxError(
                f"invalid intrinsic function {self.text!r}: {name} takes {expected} argument(s), "
                f"got {len(args)}"
            )
        return Call(name, tuple(args))

    def argument(self) -> Literal | PathArg | Call:
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail("expected an argument")
        char = text[pos]
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if text.startswith("States.", pos):
            return self.call()
        for word, value in (("null", None), ("true", True), ("false", False)):
            if text.startswith(word, pos) and not text[pos + len(word) : pos + len(word) + 1].isalnum():
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER.match(text, pos)
        if match:
            self.pos = match.end()
            token = match.group(0)
            is_float = any(c in token for c in ".eE")
            return Literal(float(token) if is_float else int(token))
        raise self.fail(f"unexpected {char!r}")

    def string(self) -> Literal:
        start = self.pos + 1
        self.pos = start
        value: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string literal")
            char = self.text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(self.text):
                    raise self.fail("open escape backslash")
                value.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == "'":
                raw = self.text[start : self.pos]
                self.pos += 1
                return Literal("".join(value), raw)
            value.append(char)
            self.pos += 1

    def path(self) -> PathArg:
        """A path runs to the first ',' or ')' outside brackets and quotes."""
        start = self.pos
        depth = 0
        quote: str | None = None
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = None
            elif char in "'\"" and depth > 0:
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        path = self.text[start : self.pos].rstrip()
        return PathArg(path)


@lru_cache(maxsize=1024)
def parse_intrinsic(expression: str) -> Call:
    """Parse (and cache) an intrinsic call; raises IntrinsicSyntaxError for invalid text."""
    return _Parser(expression).parse()
