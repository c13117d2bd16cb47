"""Looking at processes through /proc: alive or not, descendants, waiting for them to be gone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # exited, waiting to be reaped: it runs nothing any more
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (and, given its start time, is still that same process)."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                pending.append(child)
    return found


def wait_gone(processes: dict[int, int | None], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for all of ``{pid: start time}`` to end; the pids still running."""
    deadline = time.monotonic() + seconds
    while True:
        running = [pid for pid, started in processes.items() if alive(pid, started)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


def wait_for_file(path: Path, seconds: float) -> str:
    """The file's text once it exists and is not empty (AssertionError after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {seconds} s")


def sigint_as_in_a_terminal() -> None:
    """A ``preexec_fn``: SIGINT at its default, as a shell's foreground command has it. A test run started
    in the background (``.ci/run &``) inherits SIGINT ignored, and burstmap, like any nohup-aware command,
    keeps an ignored SIGINT ignored; a test of Ctrl-C must start its command as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
