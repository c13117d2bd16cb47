"""The folder a run writes its results into: claimed before the run, replaced as a whole at its end.

``OutputDir.claim(path)`` runs before anything else (before synth, before AWS is called), so a path that
cannot take the results is refused at once instead of after the job ran: a file, a folder that cannot be
written, a folder of files burstmap did not write, a folder another run is writing. Claiming locks the
folder (an ``flock`` on ``.<name>.burstmap-lock`` beside it, released by the kernel if the process dies).

The results are written into a staging folder beside it (``.<name>.burstmap-partial-*``, same file
system) and swapped in by ``commit``: the folder then holds this run's files and nothing else, never a
mix with an earlier run's ``FAILED_0.json``. A run that ends without committing (interrupted, or it could
not start) leaves the folder as it was. A marker file, ``.burstmap-output``, tells burstmap's own folders
(replaced whole) from a user's folder that happens to be named (refused, never deleted).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from burstmap.client.job_input import InvalidArgument
from burstmap.client.results import FAILED_ITEMS_FILE, DownloadedResults

MARKER = ".burstmap-output"
"""In every folder burstmap writes results into: what wrote it, for which execution, when."""
_ARGUMENT = "output_dir"


class OutputDirError(InvalidArgument):
    """The results cannot go to this folder; the message says why (``--output-dir DIR: ...``)."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(_ARGUMENT, Path(path), problem)


class OutputDirBusy(OutputDirError):
    """Another run holds the folder's lock: it is writing its results there."""


class OutputDir:
    """One claimed output folder; ``claim`` it, write into ``staging()``, ``commit``, then ``release``
    (or use it as a context manager, which releases: a staging folder not committed is removed)."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._staging: Path | None = None

    @classmethod
    def claim(cls, path: Path | str) -> OutputDir:
        """Check and lock ``path`` for one run (OutputDirError / OutputDirBusy say why not)."""
        given = Path(path)
        target = given.expanduser().resolve()  # a symlinked folder: its target is what gets replaced
        if target.exists() and not target.is_dir():
            raise OutputDirError(given, "is a file, not a folder: give a folder to write the results into")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = _lock(_sibling(target, "lock"), given)
        except OSError as exc:
            raise OutputDirError(given, f"cannot be written ({exc.strerror or exc})") from None
        try:
            if target.exists():
                _check_ours(target, given)
                if not os.access(target, os.W_OK | os.X_OK):
                    raise OutputDirError(given, "cannot be written (Permission denied)")
            _remove_leftovers(target)
        except BaseException:
            _unlock(lock_fd, _sibling(target, "lock"))
            raise
        return cls(target, lock_fd)

    def staging(self) -> Path:
        """The folder this run writes into (created on first use, beside the output folder)."""
        if self._lock_fd is None:
            raise RuntimeError(f"the output folder {self.path} was released")
        if self._staging is None:
            self._staging = _new_folder(_sibling(self.path, "partial-"))
        return self._staging

    def commit(self, downloaded: DownloadedResults | None, *, execution: str) -> DownloadedResults:
        """Swap the staging folder in as the output folder; ``downloaded`` None: the run wrote no results
        (it failed before a map run), so the folder holds an empty failed_items.json.

        Returns ``downloaded`` with its paths in the output folder.
        """
        staging = self.staging()
        if downloaded is None:
            (staging / FAILED_ITEMS_FILE).write_text("[]", encoding="utf-8")
            downloaded = DownloadedResults(
                directory=staging, manifest=None, failed_items=staging / FAILED_ITEMS_FILE
            )
        marker = {"written_by": "burstmap", "execution": execution, "date": datetime.now(UTC).isoformat()}
        (staging / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        if self.path.exists():
            try:
                _check_ours(self.path, self.path)
            except OutputDirError:
                self._staging = None  # kept: the results are there
                raise OutputDirError(
                    self.path,
                    f"files burstmap did not write appeared in it during the run; the results are in "
                    f"{staging}",
                ) from None
            old = _new_folder(_sibling(self.path, "old-"))
            os.replace(self.path, old)  # the new empty folder is replaced by the earlier run's
            try:
                os.replace(staging, self.path)
            except OSError:
                os.replace(old, self.path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, self.path)
        self._staging = None
        return downloaded.moved(staging, self.path)

    def release(self) -> None:
        """Remove an uncommitted staging folder and unlock (idempotent)."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._lock_fd is not None:
            _unlock(self._lock_fd, _sibling(self.path, "lock"))
            self._lock_fd = None

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@contextlib.contextmanager
def claimed(directory: Path | str | OutputDir) -> Iterator[OutputDir]:
    """``directory`` claimed for the block: an OutputDir already claimed stays the caller's to release."""
    if isinstance(directory, OutputDir):
        yield directory
        return
    with OutputDir.claim(directory) as output:
        yield output


# ------------------------------------------------------------------------------------------ helpers


def _sibling(target: Path, role: str) -> Path:
    return target.parent / f".{target.name}.burstmap-{role}"


def _new_folder(prefix: Path) -> Path:
    """A new folder named ``prefix`` + a random suffix, with the permissions the umask gives any folder."""
    while True:
        folder = prefix.with_name(prefix.name + uuid.uuid4().hex[:12])
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def _check_ours(target: Path, given: Path) -> None:
    """A folder burstmap may replace: empty, or holding burstmap's marker."""
    if (target / MARKER).is_file():
        return
    with os.scandir(target) as entries:
        if any(True for _ in entries):
            raise OutputDirError(
                given,
                f"holds files burstmap did not write (no {MARKER} in it): give a new or empty folder, or one "
                "an earlier burstmap run wrote (nothing in this one is deleted)",
            )


def _remove_leftovers(target: Path) -> None:
    """Staging and old folders of runs that were killed before they cleaned up (the lock is held)."""
    for role in ("partial-", "old-"):
        for leftover in target.parent.glob(f"{glob.escape(_sibling(target, role).name)}*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _lock(path: Path, given: Path) -> int:
    """An exclusive flock on ``path``; OutputDirBusy while another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputDirBusy(
                given,
                f"another burstmap run{holder} is writing its results there: wait for it to end, or give "
                "another folder",
            ) from None
        # The holder before us may have removed the file between our open and our lock: lock the one there.
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f" (process {int(os.pread(fd, 32, 0).decode() or 'x')})"
    return ""


def _unlock(fd: int, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # while still locked: a waiting run then locks a new file (see _lock)
    os.close(fd)
