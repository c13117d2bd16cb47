"""A state's input and output processing, once per query language.

JSONPath (Amazon States Language specification, "Input and Output Processing"): InputPath ->
Parameters -> the work -> ResultSelector -> ResultPath -> OutputPath, with Assign evaluated from
the result before ResultPath; Retry and Catch wrap the work together with Parameters and
ResultSelector (which see `$$.State.RetryCount`). A caught error skips ResultSelector, ResultPath
and OutputPath: the catcher's ResultPath places {"Error", "Cause"} in the state's raw input.

JSONata (AWS developer guide, "Transforming data with JSONata in Step Functions"): Arguments ->
the work -> Output and Assign, which see `$states.input`, `$states.result` (or
`$states.errorOutput` in a Catch clause) and the variables as the state was entered. Output
defaults to the result (Task, Parallel, Map), the input (Pass, Wait, Choice, Succeed) or the
error output (a Catch clause).

In both, every expression reads the variables the state was entered with; the state's new
values are stored last. A state's output holds at most 256 KiB of JSON (States.DataLimitExceeded).
"""

from __future__ import annotations

from typing import Any, Protocol

from burstmap.local.core.errors import DATA_LIMIT_EXCEEDED, StatesError
from burstmap.local.core.json_text import json_size
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES
from burstmap.local.flow.retry_catch import Catcher
from burstmap.local.query.jsonata import JSONATA, JSONPATH, Env, resolve, state_env
from burstmap.local.query.jsonpath import NOT_GIVEN, apply_input_path, apply_output_path, write_result
from burstmap.local.query.payload_template import assigned_values, resolve_template
from burstmap.local.query.variables import current_scope


def check_output_size(state_name: str, output: Any) -> None:
    """A state's (or a task's) output past 256 KiB fails the state with States.DataLimitExceeded."""
    if isinstance(output, (dict, list, str)) and json_size(output) > STATE_PAYLOAD_LIMIT_BYTES:
        raise StatesError(
            DATA_LIMIT_EXCEEDED,
            f"The state/task '{state_name}' returned a result with a size exceeding the maximum number of "
            "bytes service limit.",
        )


class StateIO(Protocol):
    """What a Task, Parallel or Map state does with its input and its result, in its query language."""

    language: str

    def effective_input(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        """What the state works on (JSONPath: after InputPath; JSONata: the raw input)."""
        ...

    def arguments(self, state: dict[str, Any], effective: Any, context: dict[str, Any]) -> Any:
        """The work's input: Parameters (JSONPath) or Arguments (JSONata), else the effective input."""
        ...

    def select(self, state: dict[str, Any], result: Any, context: dict[str, Any]) -> Any:
        """The work's result as the state keeps it (JSONPath: after ResultSelector)."""
        ...

    def succeeded(
        self,
        state: dict[str, Any],
        data: Any,
        result: Any,
        attempt_context: dict[str, Any],
        context: dict[str, Any],
    ) -> Any:
        """The state's output after its work succeeded (its new variables stored)."""
        ...

    def caught(
        self,
        state: dict[str, Any],
        index: int,
        catcher: Catcher,
        data: Any,
        error: StatesError,
        context: dict[str, Any],
    ) -> Any:
        """The output of catch clause `index` after `error` (its new variables stored)."""
        ...


class JSONPathIO:
    """InputPath, Parameters, ResultSelector, ResultPath, OutputPath and a JSONPath Assign."""

    language = JSONPATH

    def effective_input(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        return apply_input_path(data, state.get("InputPath", NOT_GIVEN), context)

    def arguments(self, state: dict[str, Any], effective: Any, context: dict[str, Any]) -> Any:
        if "Parameters" in state:
            return resolve_template(state["Parameters"], effective, context)
        return effective

    def select(self, state: dict[str, Any], result: Any, context: dict[str, Any]) -> Any:
        if "ResultSelector" in state:
            return resolve_template(state["ResultSelector"], result, context)
        return result

    def finish(
        self,
        state: dict[str, Any],
        data: Any,
        result: Any,
        context: dict[str, Any],
        *,
        assign: Any = NOT_GIVEN,
        output_context: dict[str, Any] | None = None,
    ) -> Any:
        """Assign (from the result; the state's own unless `assign` is given) -> ResultPath (into
        the raw input `data`) -> OutputPath; the new variables are stored last."""
        values = assigned_values(state.get("Assign") if assign is NOT_GIVEN else assign, result, context)
        output = write_result(data, result, state.get("ResultPath", "$"))
        output = apply_output_path(output, state.get("OutputPath", NOT_GIVEN), output_context or context)
        current_scope().assign(values)
        return output

    def succeeded(
        self,
        state: dict[str, Any],
        data: Any,
        result: Any,
        attempt_context: dict[str, Any],
        context: dict[str, Any],
    ) -> Any:
        return self.finish(state, data, result, attempt_context, output_context=context)

    def caught(
        self,
        state: dict[str, Any],
        index: int,
        catcher: Catcher,
        data: Any,
        error: StatesError,
        context: dict[str, Any],
    ) -> Any:
        error_output = error.as_output()
        values = assigned_values(state["Catch"][index].get("Assign"), error_output, context)
        output = write_result(data, error_output, catcher.result_path)
        current_scope().assign(values)
        return output


class JSONataIO:
    """Arguments, Output and a JSONata Assign."""

    language = JSONATA

    def effective_input(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        return data

    def arguments(self, state: dict[str, Any], effective: Any, context: dict[str, Any]) -> Any:
        if "Arguments" in state:
            return resolve(state["Arguments"], "Arguments", state_env(effective, context))
        return effective

    def select(self, state: dict[str, Any], result: Any, context: dict[str, Any]) -> Any:
        return result

    def finish(self, holder: dict[str, Any], env: Env, default_output: Any, prefix: str = "") -> Any:
        """Output and Assign of a state, a Choice rule or a Catch clause (`prefix` names the
        holder in error causes): both read the variables as the state was entered; the new values
        are stored last."""
        output = resolve(holder["Output"], f"{prefix}Output", env) if "Output" in holder else default_output
        values = resolve(holder["Assign"], f"{prefix}Assign", env) if "Assign" in holder else None
        if values:
            current_scope().assign(values)
        return output

    def succeeded(
        self,
        state: dict[str, Any],
        data: Any,
        result: Any,
        attempt_context: dict[str, Any],
        context: dict[str, Any],
    ) -> Any:
        return self.finish(state, state_env(data, attempt_context, result=result), result)

    def caught(
        self,
        state: dict[str, Any],
        index: int,
        catcher: Catcher,
        data: Any,
        error: StatesError,
        context: dict[str, Any],
    ) -> Any:
        error_output = error.as_output()
        env = state_env(data, context, errorOutput=error_output)
        return self.finish(state["Catch"][index], env, error_output, prefix=f"Catch[{index}]/")


JSONPATH_IO = JSONPathIO()
JSONATA_IO = JSONataIO()


def io_for(language: str) -> StateIO:
    """The input and output processing of a query language ("JSONPath" or "JSONata")."""
    return JSONATA_IO if language == JSONATA else JSONPATH_IO
