"""The Task state: invokes a Lambda function (the only resource the engine runs), under Retry and
Catch, with TimeoutSeconds.

The Resource is the optimized integration `arn:aws:states:::lambda:invoke`, whose Parameters
(JSONPath) or Arguments (JSONata) give FunctionName and Payload, or a function ARN, which gets
the whole input. The invocation itself is flow/lambda_invoke.py.
"""

from __future__ import annotations

from typing import Any

from burstmap.local.core.errors import DefinitionError, StateRuntimeError, unsupported
from burstmap.local.core.json_text import value_text
from burstmap.local.core.limits import LAMBDA_INVOKE
from burstmap.local.flow.lambda_invoke import (
    FUNCTION_ARN,
    INVOKE_PARAMETERS,
    LambdaRequest,
    request_input_bytes,
    require_runtime,
    run_task,
    task_input_error,
)
from burstmap.local.query.jsonata import JSONATA, JSONPATH, integer_value, is_expression, state_env
from burstmap.local.query.jsonpath import read_path
from burstmap.local.states.checks import (
    FLOW,
    JSONATA_COMMON,
    JSONPATH_BASE,
    JSONPATH_RESULT,
    StateCheck,
    integer_at_least,
)
from burstmap.local.states.step import Step

FIELDS = {
    JSONPATH: JSONPATH_BASE
    | FLOW
    | JSONPATH_RESULT
    | {"Resource", "Parameters", "TimeoutSeconds", "TimeoutSecondsPath", "Assign"},
    JSONATA: JSONATA_COMMON
    | FLOW
    | {"Resource", "Arguments", "Output", "Assign", "Retry", "Catch", "TimeoutSeconds"},
}


def validate(check: StateCheck) -> None:
    state, name = check.state, check.name
    resource = state.get("Resource")
    if resource == LAMBDA_INVOKE:
        _validate_invoke_fields(check)
    elif not (isinstance(resource, str) and FUNCTION_ARN.match(resource)):
        raise unsupported(f"Resource {resource}", name)
    if not check.jsonata and "TimeoutSeconds" in state and "TimeoutSecondsPath" in state:
        raise DefinitionError(f"state '{name}': give TimeoutSeconds or TimeoutSecondsPath, not both")
    timeout = state.get("TimeoutSeconds")
    if (
        timeout is not None
        and not (check.jsonata and is_expression(timeout))
        and not integer_at_least(timeout, 1)
    ):
        raise DefinitionError(f"state '{name}': TimeoutSeconds must be a positive integer, got {timeout!r}")


def _validate_invoke_fields(check: StateCheck) -> None:
    """lambda:invoke's Parameters (JSONPath; "x.$" keys count as x) or Arguments (JSONata, which
    may also be one expression) name FunctionName and at most Payload besides."""
    field = "Arguments" if check.jsonata else "Parameters"
    block = check.state.get(field)
    if check.jsonata and not isinstance(block, dict) and is_expression(block):
        return
    if not isinstance(block, dict):
        raise DefinitionError(f"state '{check.name}': {LAMBDA_INVOKE} needs {field} with FunctionName")
    names = set(block) if check.jsonata else {key[:-2] if key.endswith(".$") else key for key in block}
    for key in sorted(names - INVOKE_PARAMETERS):
        raise unsupported(f"{field}.{key}", check.name)
    if "FunctionName" not in names:
        raise DefinitionError(f"state '{check.name}': {LAMBDA_INVOKE} needs {field}.FunctionName")


def run(step: Step) -> tuple[str | None, Any]:
    effective = step.io.effective_input(step.state, step.data, step.context)
    attempt = _jsonata_attempt if step.jsonata else _jsonpath_attempt
    return step.with_retry_and_catch(lambda attempt_context: attempt(step, effective, attempt_context))


def _jsonpath_attempt(step: Step, effective: Any, context: dict[str, Any]) -> Any:
    request = LambdaRequest.for_task(
        step.state["Resource"], step.io.arguments(step.state, effective, context)
    )
    _check_input(step, request)
    require_runtime(step.services, request.function)
    return run_task(step.services, request, _jsonpath_timeout(step.state, effective, context), step.events)


def _jsonata_attempt(step: Step, effective: Any, context: dict[str, Any]) -> Any:
    state = step.state
    arguments = step.io.arguments(state, effective, context)
    timeout = None
    if "TimeoutSeconds" in state:
        env = state_env(effective, context)
        timeout = float(integer_value(state["TimeoutSeconds"], "TimeoutSeconds", env, minimum=1))
    request = LambdaRequest.for_task(state["Resource"], arguments)
    _check_input(step, request)
    require_runtime(step.services, request.function)
    return run_task(step.services, request, timeout, step.events)


def _check_input(step: Step, request: LambdaRequest) -> None:
    error = task_input_error(step.name, request_input_bytes(request))
    if error is not None:
        raise error


def _jsonpath_timeout(state: dict[str, Any], effective: Any, context: dict[str, Any]) -> float | None:
    if "TimeoutSeconds" in state:
        return float(state["TimeoutSeconds"])
    if "TimeoutSecondsPath" not in state:
        return None
    path = state["TimeoutSecondsPath"]
    value = read_path(path, effective, context)
    if not integer_at_least(value, 1):
        raise StateRuntimeError(
            f'The TimeoutSecondsPath field refers to value "{value_text(value)}" which is not a '
            f"positive integer: {path}"
        )
    return float(value)
