"""A job with a combiner of its own (tests/fixtures/mean_app), end to end on the local engine: the compute
returns floats, the combine Lambda is a mean written with combine_handler."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from local_runs import without_synth_line
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.client import run_local
from burstmap.client.local_app import prepare_app

MEAN_APP = Path(__file__).resolve().parents[1] / "fixtures" / "mean_app"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mean_app() -> Path:
    prepare_app(MEAN_APP)
    return MEAN_APP


def test_the_mean_of_float_results(mean_app: Path) -> None:
    result = run_local(size=10, app_dir=mean_app, retry_time_scale=0)

    assert result.status == "SUCCEEDED", result.cause
    output = result.output
    assert output["mean"] == math.fsum(i / 10 for i in range(10)) / 10
    assert (output["succeeded"], output["failed"], output["failed_items"], output["count"]) == (10, 0, [], 10)
    assert output["manifest"].startswith("s3://") and output["manifest"].endswith("/manifest.json")


def test_tolerated_failures_are_left_out_of_the_mean_and_reported(mean_app: Path, tmp_path: Path) -> None:
    result = run_local(
        size=10, app_dir=mean_app, retry_time_scale=0, parameters={"fail": [3, 8]}, output_dir=tmp_path / "o"
    )

    assert result.status == "SUCCEEDED", result.cause
    kept = [i / 10 for i in range(10) if i not in (3, 8)]
    assert result.output["mean"] == math.fsum(kept) / len(kept)
    assert (result.output["succeeded"], result.output["failed"]) == (8, 2)
    # In the order the children failed, as on AWS: compared by index.
    assert sorted(result.output["failed_items"], key=lambda entry: entry["index"]) == [
        {"index": 3, "item": 3, "error": "ItemRejected"},
        {"index": 8, "item": 8, "error": "ItemRejected"},
    ]
    written = json.loads((tmp_path / "o" / "failed_items.json").read_text())
    assert sorted(entry["index"] for entry in written) == [3, 8]


def test_the_item_that_failed_inside_a_batch_is_the_one_reported(mean_app: Path) -> None:
    """Batches of 5: the batch 5..9 fails as a whole (5 items, past the tolerance of 3), and the report
    names item 7, which raised, not 5, the batch's first."""
    result = CliRunner().invoke(
        cli_app,
        [
            "run",
            "--app-dir",
            str(mean_app),
            "--size",
            "10",
            "--batch-size",
            "5",
            "--parameters",
            '{"fail": [7]}',
        ]
        + ["--retry-time-scale", "0", "--no-progress", "--stats"],
        catch_exceptions=False,
    )

    assert result.exit_code == 1 and result.stdout == ""
    lines: list[Any] = without_synth_line(result.stderr).splitlines()
    assert lines[0] == (
        "burstmap: execution FAILED: States.ExceedToleratedFailureThreshold: "
        "The specified tolerated failure threshold was exceeded"
    )
    assert lines[1] == (
        "burstmap: first failing item 7: ItemRejected: item 7 is on the fail list (4 other items failed)"
    )
    assert lines[2].startswith('burstmap: stats {"wall_seconds": ')  # --stats on failure too
    assert len(lines) == 3
