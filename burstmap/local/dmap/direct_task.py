"""The distributed Map's common child, run without the interpreter: one lambda:invoke Task on the
whole child input.

A child execution that is exactly one Task
`{"Resource": lambda:invoke, "Parameters": {"FunctionName": F, "Payload.$": "$"},
"OutputPath": "$.Payload", "End": true}` (Retry allowed) is run as the interpreter runs it - the
same Lambda invocation (flow/lambda_invoke.py), retries (flow/retry_catch.py), error names and
causes, counters and output check - without building the child's context, event history or the
lambda:invoke response envelope the OutputPath drops at once. A map of a million items spends most
of its time here. tests/local/dmap/test_direct_task.py holds both paths to the same results.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.context import Services
from burstmap.local.core.errors import StatesError
from burstmap.local.core.limits import LAMBDA_INVOKE
from burstmap.local.core.protocols import Invocation
from burstmap.local.dmap.child import Batch
from burstmap.local.flow.io import check_output_size
from burstmap.local.flow.lambda_invoke import (
    count_refusal,
    envelope_bytes,
    invoke,
    payload_bytes,
    response_payload,
    task_input_error,
)
from burstmap.local.flow.retry_catch import RetryPolicy, retrying

_PROCESSOR_FIELDS = frozenset({"StartAt", "States", "ProcessorConfig", "Comment"})
_TASK_FIELDS = frozenset({"Type", "Resource", "Parameters", "OutputPath", "End", "Comment", "Retry"})


def direct_task(processor: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(state name, Task) when the item processor is exactly that one Task, else None."""
    states = processor.get("States")
    if not set(processor) <= _PROCESSOR_FIELDS or not isinstance(states, dict) or len(states) != 1:
        return None
    name, task = next(iter(states.items()))
    if (
        processor.get("StartAt") != name
        or not isinstance(task, dict)
        or not set(task) <= _TASK_FIELDS
        or task.get("Type") != "Task"
        or task.get("End") is not True
        or task.get("Resource") != LAMBDA_INVOKE
        or task.get("OutputPath") != "$.Payload"
    ):
        return None
    parameters = task.get("Parameters")
    if (
        not isinstance(parameters, dict)
        or set(parameters) != {"FunctionName", "Payload.$"}
        or parameters["Payload.$"] != "$"
        or not isinstance(parameters["FunctionName"], str)
    ):
        return None
    return name, task


class DirectLambdaTask:
    """Runs the children of a map whose processor is the one Task (see the module docstring):
    `__call__` on a thread; `entered`, `answered` and `failed` step by step for the dispatcher."""

    def __init__(self, name: str, task: dict[str, Any], services: Services) -> None:
        self.name = name
        self.function: str = task["Parameters"]["FunctionName"]
        self.retry = RetryPolicy.parse(task.get("Retry"), name)
        self.services = services
        self._envelope = envelope_bytes({"FunctionName": self.function})

    @classmethod
    def for_processor(cls, processor: dict[str, Any], services: Services) -> DirectLambdaTask | None:
        """The direct runner when the processor has that shape and the services a Lambda runtime."""
        found = direct_task(processor) if services.runtime is not None else None
        return cls(*found, services) if found is not None else None

    def __call__(self, batch: Batch) -> Any:
        """One child, start to end: its output, or the StatesError it failed with."""
        payload = self.entered(batch)
        return self.checked(retrying(lambda _: self._attempt(payload), self.retry, self.services))

    def entered(self, batch: Batch) -> bytes:
        """The child starts: its one state transition, and the payload every attempt sends (the
        input's compact JSON, cut from the reader's text when the batcher had it)."""
        self.services.stats.add("state_transitions")
        if batch.json_text is not None:
            return batch.json_text.encode("utf-8")
        return payload_bytes(batch.child_input)

    def _attempt(self, payload: bytes) -> Any:
        error = self.input_error(payload)
        if error is not None:
            raise error
        return self.answered(invoke(self.services, self.function, payload))

    def input_error(self, payload: bytes) -> StatesError | None:
        """The Task's input past the payload limit: its Parameters are FunctionName and this payload."""
        return task_input_error(self.name, self._envelope + len(payload))

    def refused(self, error: StatesError) -> None:
        """The Lambda service refused an invocation the dispatcher sent (counted as a failure)."""
        count_refusal(self.services.stats, error)

    def answered(self, invocation: Invocation) -> Any:
        """The Task's result from what lambda:Invoke returned (a function error raises)."""
        return response_payload(invocation, self.function, integration=True, stats=self.services.stats)

    def checked(self, output: Any) -> Any:
        """The child's output, refused past the payload limit."""
        check_output_size(self.name, output)
        return output
