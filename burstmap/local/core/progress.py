"""How far an execution's map runs have got, in DescribeMapRun's terms.

The engine reports this on ``execute(on_progress=...)``; the client's AWS backend builds the same value from
DescribeMapRun, so the CLI shows local and AWS jobs alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Item counts of a job's map run(s) at one moment (a batch counts each item in it)."""

    total: int | None
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    retries: int = 0
    elapsed_seconds: float = 0.0

    @classmethod
    def of_map_runs(
        cls, item_counts: list[Mapping[str, int]], *, elapsed_seconds: float, retries: int = 0
    ) -> Progress:
        """The counts summed over map runs' DescribeMapRun ``itemCounts`` (timed-out and aborted items count
        as failed); no map run yet: no total."""
        if not item_counts:
            return cls(total=None, retries=retries, elapsed_seconds=elapsed_seconds)

        def total_of(key: str) -> int:
            return sum(int(counts.get(key, 0)) for counts in item_counts)

        return cls(
            total=total_of("total"),
            succeeded=total_of("succeeded"),
            failed=total_of("failed") + total_of("timedOut") + total_of("aborted"),
            running=total_of("running"),
            pending=total_of("pending"),
            retries=retries,
            elapsed_seconds=elapsed_seconds,
        )

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second so far (0 before the first second)."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
