"""What a map run keeps of its child executions, for listing, describing and redriving them.

Kept only when the execution asks for child records (``execute(keep_child_records=True)``; ``burstmap
serve`` does, for ``ListExecutions --map-run-arn``, ``DescribeExecution`` of a child and
``RedriveExecution``). Memory stays bounded for a million-item job: every child costs 9 bytes (its
status and its start and stop as float32 seconds after the map run's start), and only the children
that did not succeed are kept in detail (input, error, cause, where to resume). A succeeded child's
input and output are in the ResultWriter's files (or, without one, in the Map state's output, whose
outputs the ledger keeps for a redrive, bounded by the 256 KiB state output limit).

A child is identified by its sequence (the order its input was read); its name derives from the map run
id and the sequence (``MapRunIdentity.child_name``), so a name leads back to the child without an index.
"""

from __future__ import annotations

import base64
import json
import threading
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from burstmap.local.dmap.child import Batch, ChildOutcome

PENDING, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED = range(6)
STATUS_NAMES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
UNSUCCESSFUL = frozenset({FAILED, TIMED_OUT, ABORTED})


@dataclass
class ResumeAt:
    """Where a failed STANDARD child (or the execution itself) resumes on a redrive: the state that
    did not succeed, its raw input and the variables visible to it."""

    state: str
    input: Any
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnsuccessfulChild:
    """A child that failed, timed out or was aborted, in detail."""

    sequence: int
    first_index: int
    item_count: int
    input_text: str
    status: int
    error: str | None = None
    cause: str | None = None
    resume: ResumeAt | None = None
    redrive_count: int = 0


@dataclass(frozen=True)
class ChildView:
    """One child as ListExecutions and DescribeExecution show it (dates are seconds since the epoch)."""

    sequence: int
    status: str
    start: float | None
    stop: float | None
    detail: UnsuccessfulChild | None


class ChildLedger:
    """Every child's status and dates, compactly; the unsuccessful ones in detail."""

    def __init__(self, origin: float, *, keep_outputs: bool = False) -> None:
        self.origin = origin
        """The map run's start (seconds since the epoch): dates are kept relative to it."""
        self.keep_outputs = keep_outputs
        """No ResultWriter: succeeded outputs are kept (JSON text) so a redrive can rebuild the output."""
        self.codes = bytearray()
        self.starts = array("f")
        self.stops = array("f")
        self.unsuccessful: dict[int, UnsuccessfulChild] = {}
        self.outputs: dict[int, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.codes)

    # ------------------------------------------------------------------------------ recording

    def read(self, batch: Batch) -> None:
        """A child's input was read (PENDING until it starts)."""
        with self._lock:
            self._grow(batch.sequence)

    def _grow(self, sequence: int) -> None:
        while len(self.codes) <= sequence:
            self.codes.append(PENDING)
            self.starts.append(-1.0)
            self.stops.append(-1.0)

    def started(self, batch: Batch, when: float) -> None:
        with self._lock:
            self._grow(batch.sequence)
            self.codes[batch.sequence] = RUNNING
            self.starts[batch.sequence] = when - self.origin
            self.stops[batch.sequence] = -1.0

    def finished(self, outcome: ChildOutcome, output_text: str | None = None) -> None:
        """A child ended: succeeded (its output kept when the ledger keeps outputs) or failed."""
        sequence = outcome.batch.sequence
        with self._lock:
            self._grow(sequence)
            self.stops[sequence] = outcome.stop.timestamp() - self.origin
            if outcome.succeeded:
                self.codes[sequence] = SUCCEEDED
                self.unsuccessful.pop(sequence, None)
                if self.keep_outputs and output_text is not None:
                    self.outputs[sequence] = output_text
                return
            # A child's state that times out fails the child (FAILED); TIMED_OUT is for a child
            # execution's own TimeoutSeconds, which the engine's children do not have.
            self.codes[sequence] = FAILED
            self._detail(
                outcome.batch, FAILED, outcome.error, outcome.cause, outcome.resume, outcome.redrive_count
            )

    def aborted(self, outcome: ChildOutcome) -> None:
        """A running child was abandoned: the map run was aborted (StopExecution)."""
        sequence = outcome.batch.sequence
        with self._lock:
            self._grow(sequence)
            self.codes[sequence] = ABORTED
            self.stops[sequence] = outcome.stop.timestamp() - self.origin
            self._detail(outcome.batch, ABORTED, None, None, None, outcome.redrive_count)

    def _detail(
        self,
        batch: Batch,
        status: int,
        error: str | None,
        cause: str | None,
        resume: Any,
        redrive_count: int,
    ) -> None:
        self.unsuccessful[batch.sequence] = UnsuccessfulChild(
            batch.sequence,
            batch.first_index,
            batch.item_count,
            batch.input_json(),
            status,
            error,
            cause,
            resume,
            redrive_count,
        )

    # ------------------------------------------------------------------------------ reading

    def redrive_count(self, sequence: int) -> int:
        """How often the child was redriven before (0 for one that never ran or succeeded)."""
        with self._lock:
            child = self.unsuccessful.get(sequence)
            return child.redrive_count if child is not None else 0

    def resume_of(self, sequence: int) -> ResumeAt | None:
        with self._lock:
            child = self.unsuccessful.get(sequence)
            return child.resume if child is not None else None

    def to_rerun(self, sequence: int) -> bool:
        """Whether a redrive runs this child again: anything that did not succeed (never started,
        failed, timed out, aborted, or never read)."""
        with self._lock:
            return sequence >= len(self.codes) or self.codes[sequence] != SUCCEEDED

    def view(self, sequence: int) -> ChildView | None:
        with self._lock:
            if not 0 <= sequence < len(self.codes):
                return None
            start, stop = self.starts[sequence], self.stops[sequence]
            return ChildView(
                sequence,
                STATUS_NAMES[self.codes[sequence]],
                None if start < 0 else self.origin + start,
                None if stop < 0 else self.origin + stop,
                self.unsuccessful.get(sequence),
            )

    def newest_first(self, status: str | None = None) -> Iterator[ChildView]:
        """Every child that has started (or a given status), the last started first."""
        wanted = None if status is None else STATUS_NAMES.index(status)
        for sequence in range(len(self.codes) - 1, -1, -1):
            code = self.codes[sequence]
            if (wanted is None and code != PENDING) or code == wanted:
                view = self.view(sequence)
                if view is not None:
                    yield view

    # ------------------------------------------------------------------------------ storing

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "origin": self.origin,
                "keep_outputs": self.keep_outputs,
                "codes": base64.b64encode(bytes(self.codes)).decode(),
                "starts": base64.b64encode(self.starts.tobytes()).decode(),
                "stops": base64.b64encode(self.stops.tobytes()).decode(),
                "unsuccessful": [
                    {**asdict(child), "resume": asdict(child.resume) if child.resume else None}
                    for child in self.unsuccessful.values()
                ],
                "outputs": {str(sequence): text for sequence, text in self.outputs.items()},
            }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChildLedger:
        ledger = cls(float(data["origin"]), keep_outputs=bool(data["keep_outputs"]))
        ledger.codes = bytearray(base64.b64decode(data["codes"]))
        ledger.starts = array("f", base64.b64decode(data["starts"]))
        ledger.stops = array("f", base64.b64decode(data["stops"]))
        if not len(ledger.codes) == len(ledger.starts) == len(ledger.stops):
            raise ValueError("a child ledger's arrays differ in length")
        for entry in data["unsuccessful"]:
            resume = entry.pop("resume")
            child = UnsuccessfulChild(**entry, resume=ResumeAt(**resume) if resume else None)
            ledger.unsuccessful[child.sequence] = child
        ledger.outputs = {int(sequence): text for sequence, text in data["outputs"].items()}
        return ledger

    def copy(self) -> ChildLedger:
        """An independent copy (a redrive records into its own)."""
        return ChildLedger.from_json(json.loads(json.dumps(self.to_json())))
