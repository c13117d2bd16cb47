"""Nothing a worker or a handler starts outlives it: process groups, the lifeline pipe, Ctrl-C, and the
memory limit (MemorySize) that kills a worker's processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime
from tests.local.services.processes import alive, start_time, wait_for_file, wait_gone

HANDLERS = """
import os, subprocess, time


def spawn(event, context):
    child = subprocess.Popen(["sleep", "1000"])
    with open(event["pids"], "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    time.sleep(event.get("then_sleep", 0))
    while event.get("loop"):
        pass
    return {"worker": os.getpid(), "child": child.pid}


def pid(event, context):
    return os.getpid()


def hog(event, context):
    data = bytearray(event["bytes"])  # every page written: resident, not just reserved
    time.sleep(event.get("hold", 0))
    return {"pid": os.getpid(), "size": len(data)}
"""


@pytest.fixture()
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return folder


@pytest.fixture()
def runtime_for() -> Iterator[Any]:
    runtimes: list[LambdaRuntime] = []

    def make(*specs: FunctionSpec, **kwargs: Any) -> LambdaRuntime:
        runtime = LambdaRuntime(specs, **kwargs)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


def invoke(runtime: LambdaRuntime, function: str, event: dict[str, Any]) -> Any:
    return runtime.invoke(function, json.dumps(event).encode())


def recorded(path: Path) -> dict[int, int | None]:
    """The pids a handler wrote (its worker's and its child's), with their start times."""
    pids = [int(pid) for pid in wait_for_file(path, 10).split()]
    return {pid: start_time(pid) for pid in pids}


# ---------------------------------------------------------------------------------------- groups


def test_each_worker_leads_its_own_session_and_ignores_ctrl_c(code: Path, runtime_for: Any) -> None:
    runtime = runtime_for(FunctionSpec("f", "handlers.pid", [code]), workers=1)
    worker = json.loads(invoke(runtime, "f", {}).payload)

    assert os.getpgid(worker) == worker and os.getsid(worker) == worker
    os.kill(worker, signal.SIGINT)  # what Ctrl-C would send, were it in the terminal's group
    time.sleep(0.2)

    assert json.loads(invoke(runtime, "f", {}).payload) == worker


def test_a_timed_out_invocation_takes_the_handlers_subprocess_with_it(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    runtime = runtime_for(FunctionSpec("f", "handlers.spawn", [code], timeout_seconds=1))
    pids_file = tmp_path / "pids"

    answer = invoke(runtime, "f", {"pids": str(pids_file), "then_sleep": 60})

    assert json.loads(answer.payload)["errorType"] == "Sandbox.Timedout"
    assert wait_gone(recorded(pids_file), 5) == []


def test_a_child_a_handler_leaves_running_ends_when_the_runtime_closes(
    code: Path, tmp_path: Path, runtime_for: Any
) -> None:
    runtime = runtime_for(FunctionSpec("f", "handlers.spawn", [code], timeout_seconds=10))
    pids_file = tmp_path / "pids"

    answer = json.loads(invoke(runtime, "f", {"pids": str(pids_file)}).payload)
    processes = recorded(pids_file)
    assert alive(answer["child"]) and alive(answer["worker"])  # the warm worker keeps its child meanwhile

    runtime.close()

    assert wait_gone(processes, 5) == []


PARENT = """
import json, sys, threading, time
from pathlib import Path
from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

code, pids = sys.argv[1], sys.argv[2]
runtime = LambdaRuntime([FunctionSpec("f", "handlers.spawn", [Path(code)], timeout_seconds=600)])
payload = json.dumps({"pids": pids, "loop": True}).encode()
threading.Thread(target=runtime.invoke, args=("f", payload), daemon=True).start()
time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_when_the_parent_dies_mid_invocation_its_workers_and_their_children_end(
    code: Path, tmp_path: Path, how: signal.Signals
) -> None:
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(code), str(pids_file)])
    try:
        processes = recorded(pids_file)  # the handler runs (and loops) in a worker, its child sleeps
        assert all(alive(pid) for pid in processes)

        parent.send_signal(how)
        parent.wait(10)

        assert wait_gone(processes, 5) == []  # the lifeline: no process of the parent's is left
    finally:
        parent.kill()
        parent.wait()


# ---------------------------------------------------------------------------------------- memory


def test_an_allocation_past_memory_size_fails_with_out_of_memory_and_the_next_runs_on_a_new_worker(
    code: Path, runtime_for: Any
) -> None:
    runtime = runtime_for(
        FunctionSpec("f", "handlers.hog", [code], memory_mb=128, timeout_seconds=60), workers=1
    )
    warm = json.loads(invoke(runtime, "f", {"bytes": 0}).payload)["pid"]

    started = time.monotonic()
    failed = invoke(runtime, "f", {"bytes": 1 << 30, "hold": 30})

    assert time.monotonic() - started < 10  # killed, not waited out
    assert failed.function_error == "Unhandled"
    assert failed.payload == (
        b'{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: '
        + failed.request_id.encode()
        + b' Error: Runtime exited with error: signal: killed"}'
    )
    assert not alive(warm)
    after = json.loads(invoke(runtime, "f", {"bytes": 50 << 20}).payload)  # 50 MB fits in 128 MB
    assert after["size"] == 50 << 20 and after["pid"] != warm
    assert runtime.counters.crashes == 1 and runtime.counters.workers_started == 2


def test_memory_size_counts_the_handlers_subprocesses_too(
    code: Path, runtime_for: Any, tmp_path: Path
) -> None:
    (code / "forks.py").write_text(
        textwrap.dedent(
            """
            import subprocess, sys, time

            HOG = "import time; x = bytearray(400 << 20); time.sleep(60)"

            def handler(event, context):
                child = subprocess.Popen([sys.executable, "-c", HOG])
                time.sleep(30)
                return child.pid
            """
        )
    )
    runtime = runtime_for(FunctionSpec("f", "forks.handler", [code], memory_mb=256, timeout_seconds=60))

    failed = invoke(runtime, "f", {})

    assert json.loads(failed.payload)["errorType"] == "Runtime.OutOfMemory"


# ---------------------------------------------------------------------------------------- S3 server

S3_PARENT = """
import sys, time
from burstmap.local.services.s3 import LocalS3

server = LocalS3().start()
print(server._process.pid, flush=True)
time.sleep(600)
"""


def test_the_s3_server_leads_its_own_session_and_ends_with_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", S3_PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        server = int(parent.stdout.readline())
        assert os.getsid(server) == server
        started = start_time(server)

        parent.kill()
        parent.wait(10)

        assert wait_gone({server: started}, 5) == []
    finally:
        parent.kill()
        parent.wait()
