"""A user's own app (tests/fixtures/outside_app: stacks/, src/jobs/, two jobs in one stack, a PythonFunction
with a requirements.txt), run locally: pick a job, batch it with a flag, and never run a stale assembly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mpmath
import pytest
from local_runs import SYNTH_LINE_PREFIXES
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.client import run_local
from burstmap.client.local_app import prepare_app

OUTSIDE_APP = Path(__file__).resolve().parents[1] / "fixtures" / "outside_app"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def outside_app() -> Path:
    prepare_app(OUTSIDE_APP)
    return OUTSIDE_APP


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """A copy of the app to edit (without its assembly)."""
    copy = tmp_path / "analytics"
    shutil.copytree(OUTSIDE_APP, copy, ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
    return copy


def burstmap(*args: str) -> tuple[int, Any, list[str]]:
    """`burstmap ARGS` in process: exit code, parsed stdout (None when empty), stderr lines."""
    result = CliRunner().invoke(cli_app, [*args], catch_exceptions=False)
    stdout = result.stdout.strip()
    return result.exit_code, (json.loads(stdout) if stdout else None), result.stderr.splitlines()


def run(app_dir: Path, *args: str) -> tuple[int, Any, list[str]]:
    return burstmap("run", "--app-dir", str(app_dir), "--retry-time-scale", "0", "--no-progress", *args)


def digit_sum(item: int, digits: int = 20) -> int:
    """The Digits job's compute, computed here independently of its handler."""
    mpmath.mp.dps = digits + 10
    text = mpmath.nstr(mpmath.sqrt(item), digits, strip_zeros=False).replace(".", "")
    return sum(int(ch) for ch in text[:digits])


# ------------------------------------------------------------------------------------------ two jobs


def test_without_a_choice_one_line_names_both_jobs(outside_app: Path) -> None:
    code, output, stderr = run(outside_app, "--size", "3")

    assert (code, output) == (2, None)
    assert stderr[-1] == (
        f"burstmap: the app in {outside_app} has 2 state machines (Analytics/Squares, Analytics/Digits): "
        "choose one with --state-machine (state_machine= in Python), e.g. --state-machine Analytics/Squares"
    )


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("Analytics/Squares", sum(i * i for i in range(10))),
        ("Analytics/Digits", sum(map(digit_sum, range(10)))),
    ],
)
def test_each_job_runs_by_its_construct_path(outside_app: Path, job: str, expected: int) -> None:
    code, output, stderr = run(outside_app, "--size", "10", "--state-machine", job)

    assert code == 0, stderr
    assert (output["total_sum"], output["succeeded"]) == (str(expected), 10)


def test_a_job_is_also_found_by_its_logical_id(outside_app: Path) -> None:
    app = prepare_app(outside_app)
    (digits,) = [
        machine for machine in app.state_machines if machine.logical_id.startswith("DigitsStateMachine")
    ]
    result = run_local(size=4, app_dir=outside_app, state_machine=digits.logical_id, retry_time_scale=0)
    assert result.output["total_sum"] == str(sum(map(digit_sum, range(4))))


# ------------------------------------------------------------------------------------------ job options


@pytest.mark.parametrize(
    "job", ["Analytics/Squares", "Analytics/Digits"], ids=["batched-by-50", "one-a-child"]
)
def test_batch_size_5_over_1000_items_makes_2_plus_200_invocations(outside_app: Path, job: str) -> None:
    code, output, stderr = run(
        outside_app, "--size", "1000", "--state-machine", job, "--batch-size", "5", "--stats"
    )

    assert code == 0, stderr
    assert output["stats"]["invocations"] == 2 + 200  # start, 200 batches of 5, combine
    expected = (
        sum(i * i for i in range(1000)) if job.endswith("Squares") else sum(map(digit_sum, range(1000)))
    )
    assert (output["total_sum"], output["succeeded"]) == (str(expected), 1000)


def test_the_deployed_batch_size_runs_without_the_flag(outside_app: Path) -> None:
    code, output, _ = run(outside_app, "--size", "120", "--state-machine", "Analytics/Squares", "--stats")
    assert (code, output["stats"]["invocations"]) == (0, 2 + 3)  # BurstCompute's default: 50 a batch


def test_max_concurrency_applies_to_the_loaded_definition(outside_app: Path) -> None:
    code, output, _ = run(
        outside_app, "--size", "20", "--state-machine", "Analytics/Digits", "--max-concurrency", "2"
    )
    assert (code, output["succeeded"]) == (0, 20)


# ------------------------------------------------------------------------------------------ never stale


def test_an_edit_of_the_handler_the_stack_or_the_environment_changes_the_next_run(
    app_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def squares(*flags: str) -> tuple[str, str]:
        code, output, stderr = run(app_copy, "--size", "4", "--state-machine", "Analytics/Squares", *flags)
        assert code == 0, stderr
        assert stderr[0].startswith(SYNTH_LINE_PREFIXES)
        return stderr[0], output["total_sum"]

    line, total = squares()
    assert (line.startswith(f"burstmap: synthesized {app_copy} (no assembly yet) in "), total) == (True, "14")
    assert squares() == (
        "burstmap: reused the assembly in cdk.out/burstmap-local (nothing the app reads changed)",
        "14",
    )

    handler = app_copy / "src" / "jobs" / "squares" / "main.py"
    handler.write_text(handler.read_text().replace("item * item +", "item * item * item +"))
    line, total = squares()
    assert (line.split(" in ")[0], total) == (
        f"burstmap: synthesized {app_copy} (src/jobs/squares/main.py changed)",
        "36",
    )

    stack = app_copy / "stacks" / "analytics.py"
    stack.write_text(
        stack.read_text().replace(
            'os.environ.get("SQUARES_OFFSET", "0")', 'os.environ.get("SQUARES_OFFSET", "1")'
        )
    )
    line, total = squares()
    assert (line.split(" in ")[0], total) == (
        f"burstmap: synthesized {app_copy} (stacks/analytics.py changed)",
        "40",
    )

    monkeypatch.setenv("SQUARES_OFFSET", "10")
    line, total = squares()
    assert (
        line.split(" in ")[0]
        == f"burstmap: synthesized {app_copy} (environment variable SQUARES_OFFSET was set)"
    )
    assert total == str(36 + 4 * 10)

    forced, total = squares("--synth")
    assert (forced.split(" in ")[0], total) == (
        f"burstmap: synthesized {app_copy} (a synth was asked for)",
        "76",
    )


def test_an_edit_of_the_python_function_reaches_the_next_run(app_copy: Path) -> None:
    def digits() -> str:
        code, output, stderr = run(app_copy, "--size", "5", "--state-machine", "Analytics/Digits")
        assert code == 0, stderr
        return output["total_sum"]

    assert digits() == str(sum(digit_sum(i) for i in range(5)))
    handler = app_copy / "src" / "jobs" / "digits" / "index.py"
    handler.write_text(
        handler.read_text().replace('parameters.get("digits", 20)', 'parameters.get("digits", 5)')
    )
    assert digits() == str(sum(digit_sum(i, 5) for i in range(5)))


# ------------------------------------------------------------------------------------------ plan


def test_plan_reads_the_chosen_job_and_its_compute_from_the_app(outside_app: Path) -> None:
    code, squares, stderr = burstmap(
        "plan",
        "--size",
        "1000",
        "--app-dir",
        str(outside_app),
        "--state-machine",
        "Analytics/Squares",
        "--json",
    )
    assert code == 0, stderr
    assert stderr[0].startswith(SYNTH_LINE_PREFIXES)
    assert {key: squares[key] for key in ("batch_size", "max_concurrency", "memory_mb", "architecture")} == {
        "batch_size": 50,
        "max_concurrency": 50,
        "memory_mb": 512,
        "architecture": "arm64",
    }
    assert (squares["timeout_seconds"], squares["child_executions"]) == (30, 20)
    assert squares["source"].startswith(f"Analytics/Squares in {outside_app} (compute Analytics/SquaresFn")

    code, digits, _ = burstmap(
        "plan", "--size", "1000", "--app-dir", str(outside_app), "--state-machine", "Analytics/Digits",
        "--batch-size", "10", "--memory-mb", "256", "--json",
    )  # fmt: skip
    assert code == 0
    assert (digits["batch_size"], digits["memory_mb"], digits["max_concurrency"]) == (
        10,
        256,
        900,
    )  # flags win
    assert (digits["timeout_seconds"], digits["child_executions"]) == (60, 100)


def test_plan_without_a_choice_names_both_jobs(outside_app: Path) -> None:
    code, _, stderr = burstmap("plan", "--size", "10", "--app-dir", str(outside_app))
    assert code == 2
    assert "has 2 state machines (Analytics/Squares, Analytics/Digits)" in stderr[-1]
