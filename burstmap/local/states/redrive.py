"""Where a redrive resumes an unsuccessful execution: ``ExecutionResult.redrive_point`` and
``execute(redrive=...)``.

AWS (RedriveExecution API reference; developer guide, "Redriving executions" and "Redriving Map
Runs"): a FAILED, ABORTED or TIMED_OUT standard execution continues from the state that did not
succeed, with that state's original input; the states that succeeded are not run again. A Distributed
Map redriven so reruns only its unsuccessful children (failed, aborted, timed out, never started),
keeping the results of those that succeeded, and its map run's ``redriveCount`` moves.

The engine keeps what that needs, as plain JSON (so a server's state directory keeps it): the top-level
state that did not succeed, its raw input, the variables visible to it and, for a Distributed Map, its
map run's child records (``dmap.child_ledger``). What the engine cannot redrive as AWS does is marked
``unsupported`` (AWS reruns only a Parallel state's failed branches and an inline Map's failed
iterations; the engine would rerun them all, so it refuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from burstmap.local.dmap.child_ledger import ResumeAt
from burstmap.local.dmap.map_run import MapRun
from burstmap.local.dmap.settings import is_distributed

SCHEMA = 1


class NotRedrivable(ValueError):
    """``execute(redrive=...)`` with a point the engine cannot resume (its ``unsupported`` says why)."""


@dataclass
class RedrivePoint:
    """The state a redrive resumes at, its input and variables, and its map run's records."""

    state: str
    input: Any
    variables: dict[str, Any] = field(default_factory=dict)
    redrive_count: int = 0
    """The redrive count of the attempt that ended here (the next attempt has one more)."""
    map_run: dict[str, Any] | None = None
    """``MapRun.resume_state()`` of the state's last map run; None when it started none."""
    unsupported: str | None = None
    """Why the engine cannot redrive from here as AWS would, or None."""

    @classmethod
    def at(
        cls,
        where: ResumeAt,
        machine: dict[str, Any],
        map_runs: list[MapRun],
        execution_arn: str,
        redrive_count: int,
    ) -> RedrivePoint:
        point = cls(where.state, where.input, dict(where.variables), redrive_count)
        state = machine["States"].get(where.state) or {}
        kind = state.get("Type")
        if kind == "Parallel" or (kind == "Map" and not is_distributed(state)):
            what = "branches" if kind == "Parallel" else "iterations"
            point.unsupported = (
                f"not supported locally: redriving from the {kind} state '{where.state}' (AWS reruns only "
                f"its failed {what}; the local engine would rerun them all)"
            )
            return point
        if kind != "Map":
            return point
        runs = [
            run for run in map_runs if run.state_name == where.state and run.execution_arn == execution_arn
        ]
        if runs:
            point.map_run = runs[-1].resume_state()
            if point.map_run is None:
                point.unsupported = (
                    f"the map run of state '{where.state}' kept no child records, so a redrive cannot tell "
                    "which children succeeded: run the execution with keep_child_records=True"
                )
        return point

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "state": self.state,
            "input": self.input,
            "variables": self.variables,
            "redrive_count": self.redrive_count,
            "map_run": self.map_run,
            "unsupported": self.unsupported,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RedrivePoint:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a version {SCHEMA} redrive point")
        return cls(
            data["state"],
            data["input"],
            dict(data["variables"]),
            int(data["redrive_count"]),
            data["map_run"],
            data["unsupported"],
        )
