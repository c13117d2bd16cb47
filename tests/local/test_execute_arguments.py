"""execute()'s arguments: a typed error naming the argument before anything runs; string handlers import
their module from where this process would."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from burstmap.local import ExecuteArgumentError, ExecuteArgumentTypeError, execute

INVOKE = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "Start", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        }
    },
}


def never_called(event: object, context: object) -> None:
    raise AssertionError("a handler ran although an argument was refused")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"retry_time_scale": float("inf")}, ExecuteArgumentError, "retry_time_scale=inf: must be a finite"),
        ({"retry_time_scale": float("nan")}, ExecuteArgumentError, "retry_time_scale=nan: must be a finite"),
        ({"retry_time_scale": -1}, ExecuteArgumentError, "retry_time_scale=-1: must be a finite number"),
        ({"retry_time_scale": "0"}, ExecuteArgumentTypeError, "retry_time_scale='0': give a number"),
        ({"max_workers": 0}, ExecuteArgumentError, "max_workers=0: must be 1 or more"),
        ({"functions": ["Start"]}, ExecuteArgumentTypeError, "functions=['Start']: give a mapping"),
        ({"functions": {"Start": 3}}, ExecuteArgumentTypeError, "functions['Start']=3: give a callable"),
        ({"functions": {"Start": "handler"}}, ExecuteArgumentError, "functions['Start']='handler': give the"),
        (
            {"functions": {"Start": "no_such_module_here.handler"}},
            ExecuteArgumentError,
            "functions['Start']='no_such_module_here.handler': no module 'no_such_module_here' on this",
        ),
    ],
)
def test_a_bad_argument_is_a_typed_error_naming_it(kwargs, error, message) -> None:
    kwargs.setdefault("functions", {"Start": never_called})
    with pytest.raises(error) as raised:
        execute(INVOKE, {"a": 1}, **kwargs)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, TypeError) == (error is ExecuteArgumentTypeError)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("value", [{"a": {1}}, {"a": float("nan")}, {"a": "\udcff"}])
def test_an_input_that_is_not_json_is_refused(value) -> None:
    with pytest.raises(ExecuteArgumentTypeError, match=r"^input=.*: not JSON"):
        execute(INVOKE, value, functions={"Start": never_called})


def test_a_string_handler_is_imported_from_where_this_process_imports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda's "module.function" form (or "module:function"): the worker process starts without the
    caller's folders on its path, so it is given the folder the module is found in here."""
    (tmp_path / "echo_handler.py").write_text("def handler(event, context):\n    return {'got': event}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for handler in ("echo_handler.handler", "echo_handler:handler"):
        result = execute(INVOKE, {"a": 1}, functions={"Start": handler})
        assert (result.status, result.output) == ("SUCCEEDED", {"got": {"a": 1}}), result.cause
    assert "echo_handler" not in sys.modules  # found, not imported, by the caller
