"""Outside apps run as on Lambda: a PythonFunction's requirements installed without Docker, the same compute
unbundled failing with Runtime.ImportModuleError, MemorySize enforced, and no process of a job left behind
however it ends (a normal end, SIGTERM or SIGKILL of ``burstmap run`` mid-handler)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from burstmap.client.local_job import run_local
from tests.local.services.processes import descendants, start_time, wait_for_file, wait_gone

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TITLES_APP = FIXTURES / "titles_app"
UNRULY_APP = FIXTURES / "unruly_app"
UNRULY_TIMEOUT_SECONDS = 20  # the Workhorse function's timeout (tests/fixtures/unruly_app/unruly.py)


def ordinal_is_th(number: int) -> bool:
    return 11 <= number % 100 <= 13 or number % 10 not in (1, 2, 3)


# ------------------------------------------------------------------------------------ dependencies


def test_a_python_function_gets_its_requirements_without_docker(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="burstmap")

    result = run_local(app_dir=TITLES_APP, size=30, state_machine="titles-bundled", retry_time_scale=0)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["total_sum"] == str(sum(ordinal_is_th(n) for n in range(30)))
    assert not [record for record in caplog.records if "titles" in record.getMessage().lower()]


def test_the_same_compute_unbundled_fails_as_on_lambda_with_one_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="burstmap")

    result = run_local(app_dir=TITLES_APP, size=30, state_machine="titles-plain", retry_time_scale=0)

    assert (result.status, result.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert result.first_failure is not None and result.first_failure.error == "Runtime.ImportModuleError"
    assert json.loads(result.first_failure.cause or "{}") == {
        "errorMessage": "Unable to import module 'titles': No module named 'inflection'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    hints = [
        record.getMessage()
        for record in caplog.records
        if "No module named 'inflection'" in record.getMessage()
    ]
    assert len(hints) == 1 and "PythonFunction" in hints[0] and "requirements.txt" in hints[0]


def test_burstmap_run_shows_the_hint_once_on_stderr_as_a_burstmap_line() -> None:
    """The CLI names a one-job stack by its name and prints engine notices as ``burstmap: ...`` lines."""
    burstmap = str(Path(sys.executable).parent / "burstmap")
    command = [burstmap, "run", "--app-dir", str(TITLES_APP), "--state-machine", "TitlesPlain", "--size", "5"]

    run = subprocess.run([*command, "--no-progress"], capture_output=True, text=True, timeout=600)

    assert run.returncode == 1, run.stderr
    hints = [line for line in run.stderr.splitlines() if "No module named 'inflection'" in line]
    assert hints[0].startswith("burstmap: function TitlesPlain-") and "PythonFunction" in hints[0]
    assert len([hint for hint in hints if "PythonFunction" in hint]) == 1


# ------------------------------------------------------------------------------------------ memory


def test_an_item_past_memory_size_fails_with_out_of_memory_and_the_job_goes_on() -> None:
    result = run_local(app_dir=UNRULY_APP, size=3, parameters={"mode": "hog"}, retry_time_scale=0)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert (result.output["succeeded"], result.output["failed"]) == (2, 1)  # one failure is tolerated
    assert result.output["failed_items"] == [{"index": 0, "item": 0, "error": "Runtime.OutOfMemory"}]


# ---------------------------------------------------------------------------------------- processes


def test_what_a_handler_leaves_running_ends_with_the_job(tmp_path: Path) -> None:
    result = run_local(
        app_dir=UNRULY_APP, size=2, parameters={"mode": "spawn", "pid_dir": str(tmp_path)}, retry_time_scale=0
    )

    assert result.status == "SUCCEEDED"
    pids = [int(pid) for item in range(2) for pid in (tmp_path / str(item)).read_text().split()]
    assert wait_gone(dict.fromkeys(pids), 5) == []  # the workers and their sleeps


def processes_with(marker: str) -> list[int]:
    """The processes whose environment holds ``marker`` (what ``burstmap run`` started and passed it on)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if start_time(pid) is not None]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_killing_burstmap_run_mid_handler_leaves_no_process_of_the_job(
    tmp_path: Path, how: signal.Signals
) -> None:
    marker = f"BURSTMAP_TEST_JOB={uuid.uuid4()}"
    command = [
        str(Path(sys.executable).parent / "burstmap"),
        "run",
        "--app-dir",
        str(UNRULY_APP),
        "--size",
        "1",
    ]
    parameters = json.dumps({"mode": "loop", "pid_dir": str(tmp_path)})
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    run = subprocess.Popen(
        [*command, "--parameters", parameters, "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        looping = [int(pid) for pid in wait_for_file(tmp_path / "0", 180).split()]  # synth, start, loop
        job = {pid: start_time(pid) for pid in {*descendants(run.pid), *looping}}
        assert len(job) >= 3  # at least the S3 server, the looping worker and its sleep
        assert processes_with(marker)  # the S3 server carries the run's environment

        run.send_signal(how)
        run.wait(30)

        assert wait_gone(job, UNRULY_TIMEOUT_SECONDS) == []
        assert processes_with(marker) == []
    finally:
        run.kill()
        run.wait()
