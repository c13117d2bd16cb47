"""An in-process stand-in for LambdaRuntime, so interpreter tests do not depend on worker processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import StatesError


@dataclass
class FakeInvocation:
    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str = "$LATEST"


class FakeRuntime:
    """Runs `handlers[name](event)` in-process and answers like lambda:Invoke (Python runtime's JSON)."""

    def __init__(self, handlers: dict[str, Callable[[Any], Any]]) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, bytes]] = []

    def invoke(self, function: str, payload: bytes) -> FakeInvocation:
        name = function.split(":function:")[-1].split(":")[0]
        self.calls.append((name, payload))
        request_id = f"request-{len(self.calls)}"
        if name not in self.handlers:
            raise StatesError("Lambda.ResourceNotFoundException", f"Function not found: {function}")
        try:
            result = self.handlers[name](json.loads(payload))
        except Exception as exc:
            document = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": request_id,
                "stackTrace": [],
            }
            return FakeInvocation(json.dumps(document).encode(), "Unhandled", request_id)
        body = result if isinstance(result, bytes) else json.dumps(result).encode()
        return FakeInvocation(body, None, request_id)

    def close(self) -> None:
        return None
