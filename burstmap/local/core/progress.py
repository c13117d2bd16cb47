"""How far an execution's map runs have got, in DescribeMapRun's terms.

The engine reports this on ``execute(on_progress=...)``; the client's AWS backend builds the same value from
DescribeMapRun, so the CLI shows local and AWS jobs alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Item counts of a job's map run(s) at one moment (a batch counts each item in it).

    ``running`` counts items (a running batch of 50 is 50); ``children_running`` counts child executions,
    which ``MaxConcurrency`` bounds (DescribeMapRun's ``executionCounts.running``; None where unknown).
    """

    total: int | None
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    retries: int = 0
    elapsed_seconds: float = 0.0
    children_running: int | None = None

    @classmethod
    def of_map_runs(
        cls,
        item_counts: list[Mapping[str, int]],
        *,
        elapsed_seconds: float,
        retries: int = 0,
        execution_counts: list[Mapping[str, int]] | None = None,
    ) -> Progress:
        """The counts summed over map runs' DescribeMapRun ``itemCounts`` (timed-out and aborted items count
        as failed) and ``executionCounts`` (children running); no map run yet: no total."""
        if not item_counts:
            return cls(total=None, retries=retries, elapsed_seconds=elapsed_seconds)

        def total_of(key: str, counts_of_runs: list[Mapping[str, int]] = item_counts) -> int:
            return sum(int(counts.get(key, 0)) for counts in counts_of_runs)

        return cls(
            total=total_of("total"),
            succeeded=total_of("succeeded"),
            failed=total_of("failed") + total_of("timedOut") + total_of("aborted"),
            running=total_of("running"),
            pending=total_of("pending"),
            retries=retries,
            elapsed_seconds=elapsed_seconds,
            children_running=None if execution_counts is None else total_of("running", execution_counts),
        )

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second so far (0 before the first second)."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
