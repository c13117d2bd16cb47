"""Run a CDK app to synthesize it, and leave nothing of it behind, however the run ends.

The app runs in a process group of its own (the jsii node process it starts is in it too), with its
output in files (no pipe a stray grandchild could keep open) and its stdin closed. The group is killed
when the app is done, when it overruns its timeout, and when the synth is interrupted (Ctrl-C, or a
SIGTERM to this process while it waits). On Linux the app also gets a parent-death signal
(``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child before it runs), so even a SIGKILL of this process,
which runs no cleanup, takes the app with it; jsii's node process then sees its stdin close and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from burstmap.local.app.errors import SynthesisError

#: PR_SET_PDEATHSIG from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
#: How long the app gets to end after SIGTERM before the group is killed.
TERMINATE_GRACE_SECONDS = 2.0
#: Lines of the app's output a failure message quotes.
TAIL_LINES = 3


class _Terminated(BaseException):
    """SIGTERM arrived while the app ran: unwinds to the cleanup, then the signal is delivered again."""


def run_app(command: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float) -> None:
    """Run ``command`` in ``cwd`` to its end; its output goes to ``log`` (the command line, stdout, stderr).

    SynthesisError, in one line quoting the app's last output lines, when it cannot start, fails or
    overruns ``timeout`` seconds. The app's process group is gone when this returns or raises.
    """
    stdout_path, stderr_path = log.with_suffix(".stdout"), log.with_suffix(".stderr")
    shown = f"{shlex.join(command)} in {cwd}"
    try:
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                process_group=0,
                preexec_fn=_parent_death_signal(),
            )
    except OSError as exc:
        raise SynthesisError(f"cannot run the CDK app ({shown}): {exc}") from exc
    timed_out = False
    with _sigterm_unwinds():  # outermost: the group is stopped before a SIGTERM is delivered again
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _stop_group(process)
            output = _collect(command, stdout_path, stderr_path, log)
    if timed_out:
        raise SynthesisError(
            f"the CDK app did not finish synthesizing within {timeout:g} s ({shown}), so it was stopped; "
            f"its last output: {_tail(output)} -- if it needs longer, raise the limit with --synth-timeout "
            f"SECONDS (or BURSTMAP_SYNTH_TIMEOUT); its full output is in {log}"
        )
    if process.returncode != 0:
        raise SynthesisError(
            f"synthesizing the CDK app failed ({shown}, exit {process.returncode}): {_tail(output)} "
            f"-- fix the app and retry; its full output is in {log}"
        )


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGKILL the child when this process dies (Linux; else None).

    The kernel sends it when the *thread* that started the child ends; the caller waits for the child in
    that same thread, so the child never outlives a synth that is still running.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return set_parent_death_signal


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the app runs, SIGTERM unwinds (so the group is killed) and is then delivered again to the
    handler that was there before. Only the main thread can set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    terminating = False

    def unwind(signum: int, frame: object) -> None:
        nonlocal terminating
        if not terminating:  # a second SIGTERM must not cut the cleanup short
            terminating = True
            raise _Terminated

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)  # the default handler ends this process here
        raise SynthesisError("synthesis stopped: this process got SIGTERM") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the app's group, SIGKILL after a grace period, and SIGKILL to whatever is left in it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    _signal_group(process.pid, signal.SIGKILL)  # what the app started and left running


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _collect(command: list[str], stdout_path: Path, stderr_path: Path, log: Path) -> tuple[str, str]:
    """The app's stdout and stderr, written together into ``log``; the two temporary files removed."""
    stdout = stdout_path.read_text(errors="replace") if stdout_path.is_file() else ""
    stderr = stderr_path.read_text(errors="replace") if stderr_path.is_file() else ""
    log.write_text(f"$ {shlex.join(command)}\n{stdout}{stderr}")
    stdout_path.unlink(missing_ok=True)
    stderr_path.unlink(missing_ok=True)
    return stdout, stderr


def _tail(output: tuple[str, str]) -> str:
    """The app's last lines (stderr's, else stdout's) as one line: a traceback's location and error."""
    stdout, stderr = output
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    if not lines:
        return "no output"
    return " | ".join(line[:300] for line in lines[-TAIL_LINES:])
