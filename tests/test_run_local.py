"""The example job end to end on this machine: synthesized app -> local engine -> exact totals.

The app is synthesized once per CDK context for the whole session (synth costs seconds); runs are
small, and retry waits are scaled to zero.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from burstmap.local.job import JobInputError, build_input, prepare_app, read_items_file, run_local

PROJECT_DIR = Path(__file__).resolve().parent.parent


def reference_total(size: int) -> int:
    """Independent of the handlers: sum of a(i), i < size, with
    a(i) = 128a(i-1) + 1863a(i-2) + 42451a(i-3) + 78341a(i-4), a(0) = 1."""
    previous = [0, 0, 0, 0]  # a(i-4) .. a(i-1)
    total = 0
    for i in range(size):
        value = (
            1
            if i == 0
            else 128 * previous[3] + 1863 * previous[2] + 42451 * previous[1] + 78341 * previous[0]
        )
        total += value
        previous = [*previous[1:], value]
    return total


def _engine_ready() -> str | None:
    """Why the end-to-end tests cannot run yet (parts still being written), or None."""
    for module in ("burstmap.local.lambda_runtime", "burstmap.local.s3", "burstmap.local.states"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is missing"
    import burstmap.local

    if not hasattr(burstmap.local, "execute"):
        return "burstmap.local.execute is missing"
    for handler in ("start", "combine", "example_compute"):
        if not (PROJECT_DIR / "lambdas" / handler / "handler.py").is_file():
            return f"lambdas/{handler}/handler.py is missing"
    return None


needs_engine = pytest.mark.skipif(_engine_ready() is not None, reason=str(_engine_ready()))


def test_reference_formula_first_values() -> None:
    assert [reference_total(n) for n in range(5)] == [0, 1, 129, 18376, 2634907]


def test_input_is_built_per_contract(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"a": 1}\n\n2\n')

    assert build_input(size=-5) == {"size": -5}  # validated by the start Lambda, like on AWS
    assert build_input(items=[1, "x"], parameters='{"k": 1}') == {"items": [1, "x"], "parameters": {"k": 1}}
    assert build_input(items_file=items) == {"items": [{"a": 1}, 2]}
    assert read_items_file(_write(tmp_path / "items.json", "[1, 2]")) == [1, 2]


def test_bad_job_descriptions_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(JobInputError, match="exactly one of size, items or items_file"):
        build_input(size=3, items=[1])
    with pytest.raises(JobInputError, match="not an array"):
        read_items_file(_write(tmp_path / "o.json", '{"a": 1}'))
    with pytest.raises(JobInputError, match="parameters must be a JSON object"):
        build_input(size=1, parameters="[1]")
    with pytest.raises(JobInputError, match="inject_throttle"):
        run_local(size=1, inject_throttle=1.5, app_dir=tmp_path)
    with pytest.raises(JobInputError, match="batch_size must be 1 or more"):
        run_local(size=1, batch_size=0, app_dir=tmp_path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="session")
def example_app() -> Path:
    """The example app, synthesized once for the session (later runs with this context reuse it)."""
    prepare_app(PROJECT_DIR)
    return PROJECT_DIR


@pytest.mark.slow
@needs_engine
def test_example_job_gives_the_exact_total_and_its_files(example_app: Path, tmp_path: Path) -> None:
    result = run_local(size=48, app_dir=example_app, retry_time_scale=0, stats=True, output_dir=tmp_path)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["total_sum"] == str(reference_total(48))
    assert (result.output["succeeded"], result.output["failed"]) == (48, 0)
    assert result.stats is not None and result.stats["invocations"] >= 3  # start, compute(s), combine
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = [Path(entry["Key"]).name for entry in manifest["ResultFiles"]["SUCCEEDED"]]
    assert listed and all((tmp_path / name).is_file() for name in listed)


@pytest.mark.slow
@needs_engine
def test_batching_on_and_off_give_the_same_total(example_app: Path) -> None:
    one_by_one = run_local(size=30, batch_size=1, app_dir=example_app, retry_time_scale=0)
    batched = run_local(size=30, batch_size=7, app_dir=example_app, retry_time_scale=0)

    assert one_by_one.output["total_sum"] == batched.output["total_sum"] == str(reference_total(30))
    assert one_by_one.output["succeeded"] == batched.output["succeeded"] == 30


@pytest.mark.slow
@needs_engine
def test_injected_throttling_is_retried_to_the_same_exact_total(example_app: Path) -> None:
    result = run_local(
        size=40,
        batch_size=1,
        inject_throttle=0.3,
        retry_time_scale=0,
        stats=True,
        seed=7,
        app_dir=example_app,
    )

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["total_sum"] == str(reference_total(40))
    assert result.stats["throttles"] > 0
    assert result.stats["retries"] >= result.stats["throttles"]


@pytest.mark.slow
@needs_engine
def test_negative_size_fails_with_invalid_input(example_app: Path) -> None:
    result = run_local(size=-5, app_dir=example_app, retry_time_scale=0)

    assert result.status == "FAILED"
    assert result.error == "InvalidInput"
    assert "size" in (result.cause or "")


@pytest.mark.slow
@needs_engine
def test_cli_prints_the_output_as_one_json_object(example_app: Path) -> None:
    from typer.testing import CliRunner

    from burstmap.cli import app

    runner = CliRunner()
    args = ["run", "--retry-time-scale", "0", "--app-dir", str(example_app)]
    done = runner.invoke(app, [*args, "--size", "16", "--stats"])
    failed = runner.invoke(app, [*args, "--size", "-5"])

    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert printed["total_sum"] == str(reference_total(16))
    assert printed["stats"]["invocations"] >= 3
    assert failed.exit_code != 0
    assert "InvalidInput" in failed.stderr
