"""`burstmap run` on this machine, end to end: synthesized app -> local engine -> one JSON object.

Two apps: the example app (the seed workload) and tests/fixtures/faulty_app, a BurstCompute job whose
compute fails, sleeps past its 1 s timeout or kills its worker for the items the job's parameters name.
Each is synthesized once per CDK context and the assembly is reused by every test; runs are small and
retry waits are scaled to zero. Totals are checked against the recurrence computed here, independently
of the handlers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from local_runs import without_synth_line
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.client import run_local
from burstmap.client.job import JobFailed, JobNotFinished
from burstmap.client.job_input import JobInput, JobInputError
from burstmap.client.local_app import prepare_app
from burstmap.client.local_job import LocalBackend, LocalOptions
from burstmap.local import UnsupportedFeature, execute

PROJECT_DIR = Path(__file__).resolve().parents[2]
FAULTY_APP = PROJECT_DIR / "tests" / "fixtures" / "faulty_app"

pytestmark = pytest.mark.slow

sys.set_int_max_str_digits(0)  # totals have hundreds of digits


def reference_terms(count: int) -> list[int]:
    """a(i) = 128a(i-1) + 1863a(i-2) + 42451a(i-3) + 78341a(i-4), a(0) = 1, for i < count."""
    terms: list[int] = []
    for i in range(count):
        back = [terms[i - k] if i - k >= 0 else 0 for k in (1, 2, 3, 4)]
        terms.append(1 if i == 0 else 128 * back[0] + 1863 * back[1] + 42451 * back[2] + 78341 * back[3])
    return terms


def reference_total(size: int) -> str:
    return str(sum(reference_terms(size)))


def test_reference_formula_first_values() -> None:
    assert reference_terms(5) == [1, 128, 18247, 2616531, 374422198]
    assert [reference_total(n) for n in range(4)] == ["0", "1", "129", "18376"]


@pytest.fixture(scope="session")
def example_app() -> Path:
    """The example app, synthesized (or its cdk.out reused) once for the session."""
    prepare_app(PROJECT_DIR)
    return PROJECT_DIR


@pytest.fixture(scope="session")
def faulty_app() -> Path:
    prepare_app(FAULTY_APP)
    return FAULTY_APP


def burstmap_run(app_dir: Path, *args: str) -> tuple[int, Any, str]:
    """`burstmap run ARGS` in process: exit code, parsed stdout (None when empty), stderr without progress
    and without the line that says whether the app was synthesized."""
    result = CliRunner().invoke(
        cli_app,
        ["run", "--app-dir", str(app_dir), "--retry-time-scale", "0", "--no-progress", *args],
        catch_exceptions=False,
    )
    stdout = result.stdout.strip()
    return result.exit_code, (json.loads(stdout) if stdout else None), without_synth_line(result.stderr)


# ------------------------------------------------------------------------------------ the example job


def test_size_prints_one_json_object_with_the_exact_total_and_progress_on_stderr(example_app: Path) -> None:
    """The real console script, as a user runs it: stdout is the output and nothing else."""
    env = {k: v for k, v in os.environ.items() if k != "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"}
    script = Path(sys.executable).with_name("burstmap")
    done = subprocess.run(
        [str(script), "run", "--size", "64", "--progress", "--stats", "--retry-time-scale", "0"],
        cwd=example_app,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    output = json.loads(done.stdout)
    assert output["total_sum"] == reference_total(64)
    assert (output["succeeded"], output["failed"], output["failed_items"]) == (64, 0, [])
    assert output["manifest"].startswith("s3://") and output["manifest"].endswith("/manifest.json")
    assert set(output["stats"]) >= {"wall_seconds", "invocations", "retries", "failures"}
    assert output["stats"]["invocations"] == 66  # start, 64 computes, combine
    assert "burstmap: 64/64 items (100.0%)" in done.stderr
    assert "Traceback" not in done.stderr and "jsii" not in done.stderr.lower()


def test_items_file_and_output_dir(example_app: Path, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("9\n0\n\n5\n")
    out = tmp_path / "results"

    code, output, stderr = burstmap_run(
        example_app, "--items", str(items), "--parameters", '{"note": "unused"}', "--output-dir", str(out)
    )

    assert code == 0, stderr
    terms = reference_terms(10)
    assert output["total_sum"] == str(terms[9] + terms[0] + terms[5])
    manifest = json.loads((out / "manifest.json").read_text())
    succeeded = manifest["ResultFiles"]["SUCCEEDED"]
    assert succeeded and manifest["ResultFiles"]["FAILED"] == []
    # COMPACT result files (the construct's default) hold the child outputs alone.
    outputs = [v for entry in succeeded for v in json.loads((out / Path(entry["Key"]).name).read_text())]
    assert sorted(int(value) for value in outputs) == sorted([terms[9], terms[0], terms[5]])


def test_batching_on_and_off_give_the_same_total(example_app: Path) -> None:
    code_one, one_by_one, _ = burstmap_run(example_app, "--size", "30", "--stats")
    code_batched, batched, _ = burstmap_run(example_app, "--size", "30", "--batch-size", "7", "--stats")

    assert code_one == code_batched == 0
    assert one_by_one["total_sum"] == batched["total_sum"] == reference_total(30)
    assert one_by_one["succeeded"] == batched["succeeded"] == 30
    assert one_by_one["stats"]["invocations"] == 32
    assert batched["stats"]["invocations"] == 7  # start, ceil(30 / 7) = 5 batches, combine


def test_injected_throttling_is_retried_to_the_same_exact_total(example_app: Path) -> None:
    code, output, stderr = burstmap_run(example_app, "--size", "40", "--inject-throttle", "0.3", "--stats")

    assert code == 0, stderr
    assert output["total_sum"] == reference_total(40)
    stats = output["stats"]
    assert stats["throttles"] > 0 and stats["retries"] >= stats["throttles"]
    assert stats["invocations"] == 42 + stats["throttles"]


def test_negative_size_fails_with_invalid_input_and_exit_1(example_app: Path) -> None:
    code, output, stderr = burstmap_run(example_app, "--size", "-5")

    assert code == 1
    assert output is None
    assert stderr.strip() == "burstmap: execution FAILED: InvalidInput: size must be zero or more, got -5."


def test_a_failing_item_without_tolerance_fails_the_job(example_app: Path, tmp_path: Path) -> None:
    """The example Map tolerates no failure: one bad item fails it, and its FAILED record is kept."""
    items = tmp_path / "items.json"
    items.write_text('[1, "x", 3]')
    out = tmp_path / "results"

    code, output, stderr = burstmap_run(example_app, "--items", str(items), "--output-dir", str(out))

    assert code == 1 and output is None
    assert stderr.splitlines() == [
        "burstmap: execution FAILED: States.ExceedToleratedFailureThreshold: "
        "The specified tolerated failure threshold was exceeded",
        "burstmap: first failing item 1: InvalidItem: The example workload counts byte strings of i bytes: "
        "each item must be a non-negative integer, got 'x'. Start it with {\"size\": N} or integer items.",
        f"burstmap: results so far in {out} (4 files)",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    failed = [
        r
        for entry in manifest["ResultFiles"]["FAILED"]
        for r in json.loads((out / entry["Key"].rsplit("/", 1)[1]).read_text())
    ]
    assert [(json.loads(r["Input"])["item"], r["Error"]) for r in failed] == [("x", "InvalidItem")]
    [failed_item] = json.loads((out / "failed_items.json").read_text())
    assert (failed_item["index"], failed_item["item"], failed_item["error"]) == (1, "x", "InvalidItem")


# ------------------------------------------------------------------------------------ the faulty app


def test_tolerated_failures_raise_time_out_and_crash_and_are_reported(
    faulty_app: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    parameters = json.dumps({"fail": [2], "sleep": [4], "die": [7]})

    code, output, stderr = burstmap_run(
        faulty_app, "--size", "10", "--parameters", parameters, "--output-dir", str(out), "--stats"
    )

    assert code == 0, stderr
    assert output["total_sum"] == str(sum(i for i in range(10) if i not in (2, 4, 7)))
    assert (output["succeeded"], output["failed"]) == (7, 3)
    errors = {entry["item"]: entry["error"] for entry in output["failed_items"]}
    assert errors == {2: "ItemRejected", 4: "Sandbox.Timedout", 7: "Runtime.ExitError"}
    assert output["stats"]["failures"] == 3
    manifest = json.loads((out / "manifest.json").read_text())
    failed_files = manifest["ResultFiles"]["FAILED"]
    records = [r for entry in failed_files for r in json.loads((out / Path(entry["Key"]).name).read_text())]
    assert {json.loads(r["Input"])["item"]: r["Error"] for r in records} == errors
    rejected = next(r for r in records if r["Error"] == "ItemRejected")
    assert json.loads(rejected["Cause"])["errorMessage"] == "item 2 is on the fail list"


def test_failures_beyond_the_tolerance_fail_the_job(faulty_app: Path) -> None:
    code, output, stderr = burstmap_run(faulty_app, "--size", "10", "--parameters", '{"fail": [0, 1, 2, 3]}')

    assert code == 1 and output is None
    assert stderr.startswith("burstmap: execution FAILED: States.ExceedToleratedFailureThreshold: ")
    assert stderr.splitlines()[1] == (
        "burstmap: first failing item 0: ItemRejected: item 0 is on the fail list (3 other items failed)"
    )


# ------------------------------------------------------------------------------------ the Python API


def test_a_local_job_follows_the_job_interface(faulty_app: Path, tmp_path: Path) -> None:
    """Start, wait with progress, result, failed items, results on disk: as a job on AWS does."""
    backend = LocalBackend(LocalOptions(app_dir=faulty_app, retry_time_scale=0))
    with backend.start(JobInput.of(size=10, parameters={"fail": [0, 1, 2, 3]})) as job:
        assert job.id.startswith("arn:aws:states:us-east-1:111111111111:execution:")
        with pytest.raises(JobNotFinished, match="has not run: wait for it first"):
            job.result()
        seen: list[Any] = []
        job.wait(on_progress=seen.append)

        with pytest.raises(JobFailed) as raised:
            job.result()
        failed = raised.value
        assert (failed.error, failed.failed_items) == ("States.ExceedToleratedFailureThreshold", 4)
        assert (failed.first_failure.index, failed.first_failure.error) == (0, "ItemRejected")
        assert sorted(item.index for item in job.failed_items()) == [0, 1, 2, 3]
        assert seen and seen[-1].total == 10 and seen[-1].failed >= 4
        final = job.progress()
        assert (final.total, final.failed >= 4, final.succeeded + final.failed <= 10) == (10, True, True)
        downloaded = job.download_results(tmp_path)
        assert downloaded.failed_count == 4 and (tmp_path / "manifest.json").is_file()
        runtime = job.runtime
    with pytest.raises(RuntimeError, match="closed"):
        runtime.invoke("anything", b"{}")


def test_run_local_returns_the_failure_as_a_result(example_app: Path) -> None:
    result = run_local(size=-5, app_dir=example_app, retry_time_scale=0)

    assert (result.status, result.error, result.succeeded) == ("FAILED", "InvalidInput", False)
    assert "size must be zero or more" in (result.cause or "")


def test_an_unsupported_field_is_refused_by_name_before_anything_runs(example_app: Path) -> None:
    definition = prepare_app(example_app).state_machine().definition
    compute = definition["States"]["MapPayloadItems"]["ItemProcessor"]["States"]["ComputePayloadItems"]
    compute["Credentials"] = {"RoleArn": "arn:aws:iam::111111111111:role/other-account"}
    called: list[Any] = []

    with pytest.raises(UnsupportedFeature, match="'Credentials' in state 'ComputePayloadItems'"):
        execute(definition, {"size": 1}, functions={"any": lambda event, context: called.append(event)})
    assert called == []


def test_bad_job_descriptions_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(JobInputError, match="inject_throttle"):
        run_local(size=1, inject_throttle=1.5, app_dir=tmp_path)
    with pytest.raises(JobInputError, match="batch_size=0: must be 1 or more"):
        run_local(size=1, batch_size=0, app_dir=tmp_path)
    with pytest.raises(JobInputError, match="workers=0: must be 1 or more"):
        run_local(size=1, workers=0, app_dir=tmp_path)
    with pytest.raises(JobInputError, match="exactly one of size, items or items_s3"):
        run_local(size=1, items=[1], app_dir=tmp_path)


def test_an_items_list_too_large_for_the_input_goes_through_the_local_s3(
    faulty_app: Path, tmp_path: Path
) -> None:
    """Over 200 KiB of items cannot be an execution input (256 KiB cap): like a run on AWS, the list is
    uploaded to the app's bucket and passed as items_s3 (without that the engine refuses the input)."""
    items = [str(i).zfill(5000) for i in range(60)]  # decimal strings, 300 KB of JSON
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))

    code, output, stderr = burstmap_run(faulty_app, "--items", str(path))

    assert code == 0, stderr
    assert (output["total_sum"], output["succeeded"]) == (str(sum(range(60))), 60)


def test_a_rerun_into_the_same_output_dir_leaves_only_its_own_files(faulty_app: Path, tmp_path: Path) -> None:
    """The first run fails items (FAILED files, failed_items.json); the second, into the same folder,
    fails none: nothing of the first is left beside the second's manifest."""
    out = tmp_path / "results"
    code, first, stderr = burstmap_run(
        faulty_app, "--size", "6", "--parameters", '{"fail": [1, 3]}', "--output-dir", str(out)
    )
    assert code == 0, stderr
    assert first["output_dir"]["directory"] == str(out)
    assert first["output_dir"]["manifest"] == str(out / "manifest.json")  # the local file, not the S3 URI
    assert sorted(item["index"] for item in json.loads((out / "failed_items.json").read_text())) == [1, 3]
    assert "FAILED_0.json" in os.listdir(out)

    code, second, stderr = burstmap_run(faulty_app, "--size", "4", "--output-dir", str(out))

    assert code == 0, stderr
    assert sorted(os.listdir(out)) == [
        ".burstmap-output",
        "SUCCEEDED_0.json",
        "failed_items.json",
        "manifest.json",
    ]
    assert json.loads((out / "failed_items.json").read_text()) == []
    map_run_id = json.loads((out / "manifest.json").read_text())["MapRunArn"].rsplit(":", 1)[-1]
    assert f"/{map_run_id}/manifest.json" in second["manifest"]  # the second run's own manifest
    assert json.loads((out / ".burstmap-output").read_text())["execution"].startswith("arn:aws:states:")
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_run_local_writes_its_output_dir_whole_too(faulty_app: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    with pytest.raises(JobInputError, match="holds files burstmap did not write"):
        run_local(size=3, app_dir=faulty_app, output_dir=out)
    (out / "stale").rmdir()
    result = run_local(
        size=3, app_dir=faulty_app, retry_time_scale=0, output_dir=out, parameters={"fail": [0]}
    )
    assert result.output_dir is not None and result.output_dir.failed_count == 1
    assert set(result.files) == {
        out / "manifest.json",
        *result.output_dir.result_files,
        out / "failed_items.json",
    }


def test_a_result_the_default_sum_cannot_add_fails_at_its_item_not_at_combine(faulty_app: Path) -> None:
    """The faulty app's compute returns its item: 0.5 is a float, which the exact sum cannot add. The
    item fails as it is computed (tolerated here: the job goes on and sums the rest)."""
    result = run_local(items=[1, 0.5, 2], app_dir=faulty_app, retry_time_scale=0)

    assert result.status == "SUCCEEDED", result.cause
    assert (result.output["total_sum"], result.output["succeeded"], result.output["failed"]) == ("3", 2, 1)
    assert result.output["failed_items"] == [{"index": 1, "item": 0.5, "error": "InvalidComputeResult"}]

    all_floats = run_local(items=[0.5] * 6, app_dir=faulty_app, retry_time_scale=0)
    assert (all_floats.status, all_floats.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert all_floats.first_failure is not None and all_floats.first_failure.error == "InvalidComputeResult"
    assert "which burstmap's default combiner (an exact sum) cannot add" in (
        all_floats.first_failure.cause or ""
    )
