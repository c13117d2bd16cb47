"""State data as JSON text: how Step Functions serialises it, measures it and quotes it in errors."""

from __future__ import annotations

import json
from typing import Any

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_json(value: Any) -> str:
    """Compact JSON text, as Step Functions serialises state data (no spaces, UTF-8 kept)."""
    return _COMPACT.encode(value)


def utf8_length(text: str) -> int:
    """Bytes of a text in UTF-8 (no copy for ASCII text, the common case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON text of a value: how payload limits are measured."""
    return utf8_length(to_json(value))


def value_text(value: Any) -> str:
    """How AWS quotes a resolved value in a runtime error: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)
