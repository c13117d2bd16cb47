"""Helpers of the tests that run real local jobs through the CLI."""

from __future__ import annotations

#: How `burstmap run` says whether it synthesized the app or reused its assembly (its first stderr line).
SYNTH_LINE_PREFIXES = ("burstmap: synthesized ", "burstmap: reused the assembly in ")


def without_synth_line(stderr: str) -> str:
    """A local run's stderr without the synth report, its first line once the app was synthesized (a run
    refused before that has none)."""
    first, _, rest = stderr.partition("\n")
    return rest if first.startswith(SYNTH_LINE_PREFIXES) else stderr
