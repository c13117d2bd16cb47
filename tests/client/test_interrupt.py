"""Stopping `burstmap run` with SIGINT (Ctrl-C) or SIGTERM: one 'interrupted' line, exit 128 + the signal,
no traceback, and nothing the job started left running. The real console script, in a session of its own.

The job's processes are found by parentage (/proc), wherever their own process groups or sessions are.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from local_runs import without_synth_line

from tests.local.services.processes import sigint_as_in_a_terminal

PROJECT_DIR = Path(__file__).resolve().parents[2]
BURSTMAP = Path(sys.executable).parent / "burstmap"

pytestmark = pytest.mark.slow


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[0]


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root``, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] != "Z":
                parents[int(entry.name)] = stat[0]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                with contextlib.suppress(OSError):
                    found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                frontier.append(pid)
    return found


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[1] != "Z"]


def wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BURSTMAP), "run", *args],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_as_in_a_terminal,
    )


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_running_local_job_stops_with_one_line_and_leaves_nothing(stop: signal.Signals, code: int) -> None:
    # The example job at 20,000 items one a child runs for minutes on this machine: stopped mid-compute.
    job = start("--size", "20000", "--batch-size", "1", "--no-progress", "--retry-time-scale", "0")
    started: list[int] = []
    try:
        assert wait_for(lambda: any("lambda_worker" in line for line in descendants(job.pid).values()), 120)
        time.sleep(1.0)  # inside handlers
        started = list(descendants(job.pid))
        job.send_signal(stop)
        stdout, stderr = job.communicate(timeout=30)
        assert (job.returncode, stdout) == (code, "")
        assert without_synth_line(stderr).splitlines() == ["burstmap: interrupted: the local job was stopped"]
        assert wait_for(lambda: alive(started) == [], 10), {pid: _stat(pid) for pid in alive(started)}
    finally:
        ended(job, started)


def test_a_job_stopped_before_it_runs_says_so_in_one_line(tmp_path: Path) -> None:
    """SIGTERM while the app synthesizes (an app that takes its time): the same one line, exit 143."""
    (tmp_path / "app.py").write_text("import time\nprint('synthesizing', flush=True)\ntime.sleep(60)\n")
    job = start("--size", "3", "--app-dir", str(tmp_path), "--no-progress")
    started: list[int] = []
    try:
        assert wait_for(lambda: any("app.py" in line for line in descendants(job.pid).values()), 60)
        started = list(descendants(job.pid))
        job.send_signal(signal.SIGTERM)
        stdout, stderr = job.communicate(timeout=30)
        assert (job.returncode, stdout, stderr) == (143, "", "burstmap: interrupted\n")
    finally:
        ended(job, started)


def ended(job: subprocess.Popen[str], started: list[int]) -> None:
    """Whatever a failed assertion (or the synth the command does not own) left: ended."""
    if job.poll() is None:
        job.kill()
        job.wait()
    for pid in [*alive(started), *descendants(job.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGKILL)
