"""Every process a local run starts ends with it: process groups and the lifeline pipe.

Each child (a Lambda worker, the S3 server) starts in a session of its own, so it is the leader of a
process group that also holds whatever its code spawns; stopping the child means killing that group
(:func:`kill_group`), which takes a handler's subprocesses with it. Its own session also keeps the child out
of the terminal's foreground group: Ctrl-C reaches this process only, which stops the children itself.

For the case where this process dies without stopping them (SIGKILL, a crash), every child holds the read
end of one **lifeline** pipe whose write end only this process holds and never writes: when this process is
gone, the kernel closes the write end, the child's read returns end-of-file, and the child kills its own
group (lambda_worker.py does this on a thread that waits on the pipe).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from contextlib import suppress

_lock = threading.Lock()
_lifeline: tuple[int, int] | None = None  # (read end, write end), created on first use


def lifeline_fd() -> int:
    """The read end of this process's lifeline pipe, to pass to a child (``pass_fds``).

    Both ends are close-on-exec: a child gets the read end only when it is passed, and no child ever gets
    the write end, so the pipe reaches end-of-file exactly when this process ends.
    """
    global _lifeline
    with _lock:
        if _lifeline is None:
            _lifeline = os.pipe()
        return _lifeline[0]


def _forget_lifeline_in_fork() -> None:
    """A forked child is a new process: its children need a lifeline of their own, not the parent's."""
    global _lifeline
    if _lifeline is not None:
        for fd in _lifeline:
            with suppress(OSError):
                os.close(fd)
    _lifeline = None


os.register_at_fork(after_in_child=_forget_lifeline_in_fork)


def kill_group(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGKILL the process group ``process`` leads (it and everything it spawned that stayed in it).

    Safe after the leader has exited: the group id stays reserved while any member lives, and a group with
    no member left is simply not found.
    """
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(OSError):
        process.kill()
