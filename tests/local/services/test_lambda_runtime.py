"""The local Lambda runtime: warm workers, the context object, error payloads, timeouts, crashes,
throttling, and how function names and ARNs resolve."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burstmap.local.core.errors import StatesError
from burstmap.local.services import lambda_worker
from burstmap.local.services.lambda_errors import MAX_RESPONSE_BYTES
from burstmap.local.services.lambda_function import parse_function_reference
from burstmap.local.services.lambda_runtime import (
    FunctionSpec,
    LambdaConfigurationError,
    LambdaRuntime,
    LambdaServiceError,
)

HANDLERS = """
import json, os, signal, sys, time

IMPORTS_LOG = os.environ.get("IMPORTS_LOG")
if IMPORTS_LOG:
    with open(IMPORTS_LOG, "a") as log:
        log.write(f"{os.getpid()}\\n")
CALLS = 0


def count(event, context):
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "pid": os.getpid()}


def describe(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("FROM_SPEC", "FROM_EXTRA", "AWS_PROFILE", "AWS_REGION")},
        "event": event,
    }


def fail(event, context):
    raise ValueError("boom")


def fail_empty(event, context):
    raise KeyError


def overlap(event, context):
    started = time.time()
    time.sleep(0.3)
    return {"pid": os.getpid(), "start": started, "end": time.time()}


def sleepy(event, context):
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}


def nap(event, context):
    if event.get("started"):
        open(event["started"], "w").close()
    time.sleep(event.get("seconds", 0))
    if event.get("die"):
        os._exit(1)
    return {"pid": os.getpid(), "remaining": context.get_remaining_time_in_millis()}


def die(event, context):
    if event.get("how") == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)


def unicode(event, context):
    return {"text": "\\u00e9\\u4e2d"}


def raw(event, context):
    return b"not json at all"


def unencodable(event, context):
    return {1, 2}
"""


@pytest.fixture()
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return folder


def spec(code: Path, name: str, handler: str | None = None, **kwargs: Any) -> FunctionSpec:
    return FunctionSpec(name=name, handler=handler or f"handlers.{name}", code_paths=[code], **kwargs)


@pytest.fixture()
def runtime_for(code: Path) -> Iterator[Any]:
    runtimes: list[LambdaRuntime] = []

    def make(*specs: FunctionSpec, **kwargs: Any) -> LambdaRuntime:
        runtime = LambdaRuntime(specs, **kwargs)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


def call(runtime: LambdaRuntime, function: str, event: Any = None) -> tuple[Any, Any]:
    invocation = runtime.invoke(function, json.dumps({} if event is None else event).encode())
    return json.loads(invocation.payload), invocation


# ------------------------------------------------------------------------------------ warm workers


def test_a_worker_imports_the_handler_once_and_serves_many_invocations(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    log = tmp_path / "imports.log"
    runtime = runtime_for(spec(code, "count", environment={"IMPORTS_LOG": str(log)}), workers=1)

    results = [call(runtime, "count")[0] for _ in range(5)]

    assert [r["calls"] for r in results] == [1, 2, 3, 4, 5]
    assert len({r["pid"] for r in results}) == 1
    assert log.read_text().split() == [str(results[0]["pid"])]
    assert runtime.counters.workers_started == 1


def test_concurrent_invocations_never_exceed_the_worker_limit(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(spec(code, "overlap"), workers=2)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def invoke() -> None:
        payload, _ = call(runtime, "overlap")
        with lock:
            results.append(payload)

    threads = [threading.Thread(target=invoke) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 6
    assert len({r["pid"] for r in results}) == 2
    # sweep the start/end times: ends sort before starts at the same instant
    events = sorted(
        [(r["start"], 1) for r in results] + [(r["end"], -1) for r in results], key=lambda e: (e[0], e[1])
    )
    running = most_at_once = 0
    for _, change in events:
        running += change
        most_at_once = max(most_at_once, running)
    assert most_at_once == 2


def _queued_pair(
    runtime: LambdaRuntime, first: dict[str, Any], second: dict[str, Any], tmp_path: Path
) -> list[Any]:
    """Invoke `first`, then `second` once `first` runs (one worker: `second` queues behind it)."""
    answers: list[Any] = [None, None]
    started = tmp_path / "first-started"

    def invoke(slot: int, event: dict[str, Any]) -> None:
        answers[slot] = runtime.invoke("nap", json.dumps(event).encode())

    threads = [threading.Thread(target=invoke, args=(0, {**first, "started": str(started)}))]
    threads[0].start()
    while not started.exists():
        threading.Event().wait(0.01)
    threads.append(threading.Thread(target=invoke, args=(1, second)))
    threads[1].start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("first", [{"seconds": 0.3, "die": True}, {"seconds": 5}])
def test_an_invocation_queued_behind_one_that_crashes_or_times_out_runs_on_a_new_worker(
    code: Path, tmp_path: Path, runtime_for: Any, first: dict[str, Any]
) -> None:
    runtime = runtime_for(spec(code, "nap", timeout_seconds=1.5), workers=1)
    warm_pid = call(runtime, "nap", {})[0]["pid"]

    failed, queued = _queued_pair(runtime, first, {}, tmp_path)

    assert failed.function_error == "Unhandled"
    error_type = json.loads(failed.payload)["errorType"]
    assert error_type == ("Runtime.ExitError" if first.get("die") else "Sandbox.Timedout")
    assert queued.function_error is None
    assert json.loads(queued.payload)["pid"] != warm_pid
    assert runtime.counters.workers_started == 2
    assert runtime.counters.crashes + runtime.counters.timeouts == 1


def test_a_queued_invocations_deadline_starts_when_it_starts(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    runtime = runtime_for(spec(code, "nap", timeout_seconds=3), workers=1)
    call(runtime, "nap", {})

    slow, queued = _queued_pair(runtime, {"seconds": 1.5}, {}, tmp_path)

    assert slow.function_error is None and queued.function_error is None
    # Timed from when it was sent, about 1,500 ms would be left; from its start, nearly 3,000.
    assert json.loads(queued.payload)["remaining"] > 2500


# -------------------------------------------------------------------------------------- the context


def test_the_handler_gets_a_lambda_context_and_the_function_environment(
    code: Path, runtime_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")  # must not reach a handler
    runtime = runtime_for(
        spec(code, "describe", environment={"FROM_SPEC": "spec"}, timeout_seconds=30, memory_mb=256),
        extra_env={"FROM_EXTRA": "extra"},
    )

    payload, invocation = call(runtime, "describe", {"a": [1, "x"]})

    assert payload["aws_request_id"] == invocation.request_id
    assert uuid.UUID(invocation.request_id).version == 4
    assert payload["function_name"] == "describe"
    assert payload["function_version"] == "$LATEST" == invocation.executed_version
    assert payload["invoked_function_arn"] == "arn:aws:lambda:us-east-1:111111111111:function:describe"
    assert payload["memory_limit_in_mb"] == "256"  # a string, as the Python runtime gives it
    assert payload["log_group_name"] == "/aws/lambda/describe"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", payload["log_stream_name"])
    assert 25_000 < payload["remaining"] <= 30_000
    assert payload["env"] == {
        "FROM_SPEC": "spec",
        "FROM_EXTRA": "extra",
        "AWS_PROFILE": None,
        "AWS_REGION": "us-east-1",
    }
    assert payload["event"] == {"a": [1, "x"]}
    assert invocation.function_error is None


def test_responses_are_serialised_like_the_python_runtime(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(spec(code, "describe"), spec(code, "unicode"), spec(code, "raw"))

    echoed = runtime.invoke("describe", b'{"k":[1,2]}').payload
    assert b'"event": {"k": [1, 2]}' in echoed  # default separators
    assert runtime.invoke("unicode", b"{}").payload == '{"text": "é中"}'.encode()  # non-ASCII kept
    assert runtime.invoke("raw", b"{}").payload == b"not json at all"  # bytes go out as they are


# ------------------------------------------------------------------------------------------- errors


def test_a_handler_exception_gives_the_runtime_error_document(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(spec(code, "fail"), spec(code, "fail_empty"))

    invocation = runtime.invoke("fail", b"{}")

    assert invocation.function_error == "Unhandled"
    document = json.loads(invocation.payload)
    assert list(document) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert document["errorMessage"] == "boom"
    assert document["errorType"] == "ValueError"
    assert document["requestId"] == invocation.request_id
    path = code / "handlers.py"
    line = HANDLERS.splitlines().index('    raise ValueError("boom")') + 1
    assert document["stackTrace"] == [
        f'  File "{path}", line {line}, in fail\n    raise ValueError("boom")\n'
    ]
    assert invocation.payload.startswith(b'{"errorMessage": "boom", "errorType": "ValueError", "requestId": ')

    empty = json.loads(runtime.invoke("fail_empty", b"{}").payload)
    assert (empty["errorMessage"], empty["errorType"]) == ("", "KeyError")
    assert runtime.counters.errors == 2


def test_an_unencodable_result_is_a_marshal_error(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(spec(code, "unencodable"))

    invocation = runtime.invoke("unencodable", b"{}")

    assert invocation.function_error == "Unhandled"
    assert json.loads(invocation.payload) == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": invocation.request_id,
        "stackTrace": [],
    }


def test_a_handler_that_cannot_be_imported_fails_every_invocation(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(
        spec(code, "missing_module", handler="nowhere.handler"),
        spec(code, "missing", handler="handlers.nothing"),
    )

    for _ in range(2):
        document = json.loads(runtime.invoke("missing_module", b"{}").payload)
        assert document == {
            "errorMessage": "Unable to import module 'nowhere': No module named 'nowhere'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        }
    assert json.loads(runtime.invoke("missing", b"{}").payload)["errorType"] == "Runtime.HandlerNotFound"


def test_a_handler_past_its_timeout_is_killed_and_its_worker_replaced(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(spec(code, "sleepy", timeout_seconds=0.5), workers=1)
    first_pid = call(runtime, "sleepy", {"seconds": 0})[0]["pid"]

    invocation = runtime.invoke("sleepy", b'{"seconds": 5}')

    assert invocation.function_error == "Unhandled"
    assert invocation.payload == (
        b'{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: '
        + invocation.request_id.encode()
        + b' Error: Task timed out after 0.50 seconds"}'
    )
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)
    after, later = call(runtime, "sleepy", {"seconds": 0})
    assert later.function_error is None and after["pid"] != first_pid
    assert runtime.counters.timeouts == 1 and runtime.counters.workers_started == 2


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("exit", "Runtime exited with error: exit status 1"),
        ("signal", "Runtime exited with error: signal: killed"),
    ],
)
def test_a_worker_that_dies_fails_the_invocation_and_is_replaced(
    code: Path, runtime_for: Any, how: str, reason: str
) -> None:
    runtime = runtime_for(spec(code, "die"), spec(code, "count", environment={}), workers=1)

    invocation = runtime.invoke("die", json.dumps({"how": how}).encode())

    assert invocation.function_error == "Unhandled"
    assert json.loads(invocation.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {invocation.request_id} Error: {reason}",
    }
    assert runtime.counters.crashes == 1
    assert runtime.invoke("die", b'{"how": "exit"}').function_error == "Unhandled"  # a new worker, same fate
    assert call(runtime, "count")[0]["calls"] == 1  # other functions are unaffected


def test_a_response_over_six_megabytes_is_refused(runtime_for: Any) -> None:
    runtime = runtime_for(FunctionSpec("big", lambda event, context: b"a" * (MAX_RESPONSE_BYTES + 1)))

    invocation = runtime.invoke("big", b"{}")

    assert invocation.function_error == "Unhandled"
    assert json.loads(invocation.payload) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


# ----------------------------------------------------------------------------------------- callables


def test_a_callable_runs_in_process_with_a_context_and_the_same_error_document(runtime_for: Any) -> None:
    seen: list[Any] = []

    def handler(event: Any, context: Any) -> Any:
        seen.append((event, context.function_name, context.invoked_function_arn, context.aws_request_id))
        if event.get("fail"):
            error = RuntimeError("recorded")
            error.stack_trace = ['  File "/var/task/f.py", line 1, in h\n    raise\n']  # type: ignore[attr-defined]
            raise error
        return {"ok": event["n"]}

    runtime = runtime_for(FunctionSpec("inproc", handler))

    ok = runtime.invoke("inproc", b'{"n": 3}')
    failed = runtime.invoke("inproc", b'{"fail": true}')

    assert ok.payload == b'{"ok": 3}' and ok.function_error is None
    assert seen[0] == (
        {"n": 3},
        "inproc",
        "arn:aws:lambda:us-east-1:111111111111:function:inproc",
        ok.request_id,
    )
    assert failed.payload == (
        b'{"errorMessage": "recorded", "errorType": "RuntimeError", "requestId": "'
        + failed.request_id.encode()
        + b'", "stackTrace": ["  File \\"/var/task/f.py\\", line 1, in h\\n    raise\\n"]}'
    )


def test_a_callable_past_its_timeout_is_reported_after_it_returns(runtime_for: Any) -> None:
    import time

    runtime = runtime_for(FunctionSpec("slow", lambda event, context: time.sleep(0.2), timeout_seconds=0.05))

    invocation = runtime.invoke("slow", b"{}")

    assert json.loads(invocation.payload)["errorType"] == "Sandbox.Timedout"
    assert runtime.counters.timeouts == 1


# ------------------------------------------------------------------------------------------ service


def test_injected_throttling_follows_the_seeded_rate_without_running_the_handler(runtime_for: Any) -> None:
    calls: list[int] = []
    runtime = runtime_for(
        FunctionSpec("f", lambda event, context: calls.append(1) or 1), throttle_rate=0.3, seed=7
    )
    throttled = 0
    for _ in range(400):
        try:
            runtime.invoke("f", b"{}")
        except LambdaServiceError as error:
            throttled += 1
            assert isinstance(error, StatesError)
            assert error.error == "Lambda.TooManyRequestsException"
            assert re.fullmatch(
                r"Rate Exceeded\. \(Service: AWSLambda; Status Code: 429; "
                r"Error Code: TooManyRequestsException; Request ID: [0-9a-f-]{36}; Proxy: null\)",
                error.cause or "",
            )

    assert 80 <= throttled <= 160
    assert len(calls) == 400 - throttled
    assert runtime.counters.throttles == throttled and runtime.counters.invocations == 400

    again = runtime_for(FunctionSpec("f", lambda event, context: 1), throttle_rate=0.3, seed=7)
    repeat = 0
    for _ in range(400):
        try:
            again.invoke("f", b"{}")
        except LambdaServiceError:
            repeat += 1
    assert repeat == throttled  # same seed, same sequence


@pytest.mark.parametrize(
    ("reference", "arn"),
    [
        ("ghost", "arn:aws:lambda:us-east-1:111111111111:function:ghost:$LATEST"),
        (
            "arn:aws:lambda:us-east-1:111111111111:function:ghost",
            "arn:aws:lambda:us-east-1:111111111111:function:ghost:$LATEST",
        ),
        (
            "arn:aws:lambda:eu-west-1:222222222222:function:f:prod",
            "arn:aws:lambda:eu-west-1:222222222222:function:f:prod",
        ),
    ],
)
def test_an_unknown_function_is_resource_not_found(runtime_for: Any, reference: str, arn: str) -> None:
    runtime = runtime_for(FunctionSpec("f", lambda event, context: 1))

    with pytest.raises(LambdaServiceError) as raised:
        runtime.invoke(reference, b"{}")

    assert raised.value.error == "Lambda.ResourceNotFoundException"
    assert re.fullmatch(
        re.escape(f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: ")
        + r"ResourceNotFoundException; Request ID: [0-9a-f-]{36}; Proxy: null\)",
        raised.value.cause or "",
    )


@pytest.mark.parametrize(
    ("reference", "invoked_arn"),
    [
        ("f", "arn:aws:lambda:us-east-1:111111111111:function:f"),
        ("f:$LATEST", "arn:aws:lambda:us-east-1:111111111111:function:f:$LATEST"),
        (
            "arn:aws:lambda:us-east-1:111111111111:function:f",
            "arn:aws:lambda:us-east-1:111111111111:function:f",
        ),
        (
            "arn:aws:lambda:us-east-1:111111111111:function:f:live",
            "arn:aws:lambda:us-east-1:111111111111:function:f:live",
        ),
        ("111111111111:function:f", "arn:aws:lambda:us-east-1:111111111111:function:f"),
    ],
)
def test_names_and_arns_resolve_to_the_function(runtime_for: Any, reference: str, invoked_arn: str) -> None:
    runtime = runtime_for(FunctionSpec("f", lambda event, context: context.invoked_function_arn))

    assert json.loads(runtime.invoke(reference, b"{}").payload) == invoked_arn


def test_parse_function_reference() -> None:
    assert parse_function_reference("arn:aws:lambda:us-west-2:123:function:n:7") == (
        "n",
        "7",
        "us-west-2",
        "123",
    )
    assert parse_function_reference("123:function:n") == ("n", None, None, "123")
    assert parse_function_reference("n") == ("n", None, None, None)


# -------------------------------------------------------------------------------------- bad inputs


def test_bad_specs_are_refused_with_a_message_that_says_what_to_do(code: Path) -> None:
    with pytest.raises(LambdaConfigurationError, match="'module.function'"):
        LambdaRuntime([FunctionSpec("f", "nodot", [code])])
    with pytest.raises(LambdaConfigurationError, match="defined twice"):
        LambdaRuntime([FunctionSpec("f", "a.b", [code]), FunctionSpec("f", "a.b", [code])])
    with pytest.raises(LambdaConfigurationError, match="timeout_seconds must be positive"):
        LambdaRuntime([FunctionSpec("f", "a.b", [code], timeout_seconds=0)])
    with pytest.raises(LambdaConfigurationError, match="throttle_rate"):
        LambdaRuntime([], throttle_rate=1.5)
    with pytest.raises(LambdaConfigurationError, match="workers"):
        LambdaRuntime([], workers=0)


def test_a_closed_runtime_stops_its_workers_and_refuses_invocations(code: Path) -> None:
    with LambdaRuntime([spec(code, "count", environment={})]) as runtime:
        pid = call(runtime, "count")[0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        runtime.invoke("count", b"{}")


@pytest.mark.parametrize("in_process", [False, True])
def test_a_payload_that_is_not_json_is_refused_by_the_service(
    code: Path, runtime_for: Any, in_process: bool
) -> None:
    function = (
        FunctionSpec("f", lambda event, context: 1) if in_process else spec(code, "count", environment={})
    )
    runtime = runtime_for(function)

    with pytest.raises(LambdaServiceError) as raised:
        runtime.invoke(function.name, b"not json")

    assert raised.value.error == "Lambda.InvalidRequestContentException"
    assert (raised.value.cause or "").startswith("Could not parse request body into json: ")
    assert runtime.invoke(function.name, b"[]").function_error is None  # the worker is still fine


def test_handlers_may_be_named_with_a_colon_and_shadow_nothing_of_burstmap(
    code: Path, runtime_for: Any
) -> None:
    (code / "errors.py").write_text("def handler(event, context):\n    return 'the user module'\n")
    runtime = runtime_for(
        spec(code, "colon", handler="handlers:count", environment={}),
        spec(code, "errors", handler="errors.handler"),
    )

    assert call(runtime, "colon")[0]["calls"] == 1
    assert call(runtime, "errors")[0] == "the user module"  # not burstmap/local/errors.py


def test_the_worker_script_imports_the_standard_library_only() -> None:
    """lambda_worker.py runs by path in a process whose sys.path is the function's code (and layers), as in
    Lambda: it must not need burstmap, nor anything else outside the standard library."""
    tree = ast.parse(Path(lambda_worker.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported and imported <= sys.stdlib_module_names | {"__future__"}, (
        imported - sys.stdlib_module_names
    )
