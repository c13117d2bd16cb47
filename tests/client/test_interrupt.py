"""Stopping `burstmap run` with SIGINT (Ctrl-C) or SIGTERM: one 'interrupted' line, exit 128 + the signal,
no traceback, and nothing the job started left running. The real console script, in its own session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
BURSTMAP = Path(sys.executable).parent / "burstmap"

pytestmark = pytest.mark.slow


def group_members(leader: int) -> list[str]:
    """The live processes of the session the command leads (itself excluded)."""
    listing = subprocess.run(
        ["ps", "-ww", "-o", "pid=,stat=,args=", "-g", str(leader)], capture_output=True, text=True
    )
    members = []
    for line in listing.stdout.splitlines():
        pid, stat, *args = line.split(maxsplit=2)
        if int(pid) != leader and not stat.startswith("Z"):
            members.append(" ".join(args))
    return members


def start(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BURSTMAP), "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_running_local_job_stops_with_one_line_and_leaves_nothing(stop: signal.Signals, code: int) -> None:
    # The example job at 20,000 items one a child runs for minutes on this machine: stopped mid-compute.
    job = start("--size", "20000", "--batch-size", "1", "--no-progress", "--retry-time-scale", "0")
    try:
        started = wait_for(lambda: any("lambda_worker" in p for p in group_members(job.pid)), 120)
        assert started, (job.poll(), group_members(job.pid))
        time.sleep(1.0)  # inside handlers
        job.send_signal(stop)
        stdout, stderr = job.communicate(timeout=30)
        assert (job.returncode, stdout) == (code, "")
        assert stderr.splitlines() == ["burstmap: interrupted: the local job was stopped"]
        assert wait_for(lambda: group_members(job.pid) == [], 10), group_members(job.pid)
    finally:
        with_group_gone(job)


def test_a_job_stopped_before_it_runs_says_so_in_one_line(tmp_path: Path) -> None:
    """SIGTERM while the app synthesizes (an app that takes its time): the same one line, exit 143."""
    (tmp_path / "app.py").write_text("import time\nprint('synthesizing', flush=True)\ntime.sleep(60)\n")
    job = start("--size", "3", "--app-dir", str(tmp_path), "--no-progress")
    try:
        assert wait_for(lambda: any("app.py" in p for p in group_members(job.pid)), 60)
        job.send_signal(signal.SIGTERM)
        stdout, stderr = job.communicate(timeout=30)
        assert (job.returncode, stdout, stderr) == (143, "", "burstmap: interrupted\n")
    finally:
        with_group_gone(job)


def with_group_gone(job: subprocess.Popen[str]) -> None:
    """Whatever a failed assertion left: the test's own session, ended."""
    if job.poll() is None:
        job.kill()
        job.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGKILL)
