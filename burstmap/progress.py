"""Progress of a running job, in DescribeMapRun's terms, shared by local and remote runs."""

from __future__ import annotations

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

    @property
    def done(self) -> int:
        return self.succeeded + self.failed
