"""Showing a job's progress: one plain line, a rich bar, or nothing.

rich is imported lazily, when a bar is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Protocol

from burstmap.local.core.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console


def running(progress: Progress) -> str:
    """What is running: child executions, which max_concurrency bounds (a batch of 50 items is one
    child); items where the child count is unknown."""
    if progress.children_running is None:
        return f"{progress.running} items running"
    return f"{progress.children_running} running"


def describe(progress: Progress) -> str:
    """One plain line: done of total, percentage, rate, children running, retries, failures."""
    total = "?" if progress.total is None else str(progress.total)
    share = f" ({100 * progress.done / progress.total:.1f}%)" if progress.total else ""
    return (
        f"{progress.done}/{total} items{share}, {progress.rate:.1f} items/s, "
        f"{running(progress)}, {progress.retries} retries, {progress.failed} failed, "
        f"{progress.elapsed_seconds:.1f}s"
    )


class ProgressDisplay(Protocol):
    """Something that shows a job's progress; `update` is passed as a run's `on_progress`."""

    def update(self, progress: Progress) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Shows nothing (--no-progress)."""

    def update(self, progress: Progress) -> None:
        return None

    def close(self) -> None:
        return None


class LineProgress:
    """Plain periodic lines on a stream: for logs and CI, where a redrawn bar would be noise.

    A line is written when the counts changed and `interval_seconds` passed since the last line, and once
    more on `close` with the final counts.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval = interval_seconds
        self._clock = clock
        self._last_time: float | None = None
        self._last_line: str | None = None
        self._latest: Progress | None = None

    def update(self, progress: Progress) -> None:
        self._latest = progress
        now = self._clock()
        if self._last_time is not None and now - self._last_time < self._interval:
            return
        self._write(progress)
        self._last_time = now

    def _write(self, progress: Progress) -> None:
        line = describe(progress)
        if line == self._last_line:
            return
        self._stream.write(f"burstmap: {line}\n")
        self._stream.flush()
        self._last_line = line

    def close(self) -> None:
        if self._latest is not None:
            self._write(self._latest)


class RichProgress:
    """A live rich bar on stderr: done of total, rate, running, retries, failures."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("[bold]burstmap[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} items/s"),
            TextColumn("{task.fields[running]}"),
            TextColumn("{task.fields[retries]} retries"),
            TextColumn("[red]{task.fields[failed]} failed[/red]"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._bar.add_task(
            "items", total=None, rate=0.0, running="0 running", retries=0, failed=0
        )
        self._bar.start()

    def update(self, progress: Progress) -> None:
        self._bar.update(
            self._task,
            total=progress.total,
            completed=progress.done,
            rate=progress.rate,
            running=running(progress),
            retries=progress.retries,
            failed=progress.failed,
        )

    def close(self) -> None:
        self._bar.stop()


def progress_display(mode: bool | None, stream: IO[str] | None = None) -> ProgressDisplay:
    """The display for a run on stderr.

    A live bar when stderr is a terminal, periodic plain lines (at most one per 10 s, and the final counts)
    elsewhere, so logs and CI see progress without a redrawn bar; `mode` False (--no-progress) hides it.
    `mode` True (--progress) is the default made explicit.
    """
    stream = stream if stream is not None else sys.stderr
    is_terminal = stream.isatty()
    if mode is False:
        return NoProgress()
    if is_terminal:
        from rich.console import Console

        return RichProgress(Console(file=stream))
    return LineProgress(stream)
