"""Jobs over S3 objects (BurstCompute ``input_prefix``) run locally, end to end.

tests/fixtures/objects_app is a BurstCompute job in objects mode: every object under ``input/`` is one
item, the compute (real boto3, against the local S3) writes an upper-cased copy under ``output/`` and
returns the byte count; the Map tolerates one failed object. Its state machine has no start Lambda: a
Pass defaults ``parameters`` and the Map lists the prefix with ``listObjectsV2``. The expected totals
and copies are computed here from the files the tests write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from local_runs import without_synth_line
from typer.testing import CliRunner

from burstmap.cli import app as cli_app
from burstmap.client.job_input import JobInputError
from burstmap.client.local_app import ObjectsSource, objects_source, prepare_app
from burstmap.client.local_job import run_local
from burstmap.local.services.s3 import LocalS3

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OBJECTS_APP = FIXTURES / "objects_app"
FAULTY_APP = FIXTURES / "faulty_app"

pytestmark = pytest.mark.slow

#: The input files (relative path -> body): nested folders, an empty object, non-ASCII bytes.
FILES: dict[str, bytes] = {
    "a.txt": b"hello",
    "b.txt": b"burst map",
    "c/d.txt": b"nested object",
    "c/e/f.csv": b"x,y\n1,2\n",
    "empty.bin": b"",
    "g.txt": "caf\u00e9 \u2603".encode(),
    "h.txt": b"last one",
}


@pytest.fixture(scope="session")
def objects_app() -> Path:
    """The objects-mode fixture app, synthesized (or its cdk.out reused) once for the session."""
    prepare_app(OBJECTS_APP)
    return OBJECTS_APP


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for relative, body in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


def burstmap_run(app_dir: Path, *args: str) -> tuple[int, Any, str]:
    """`burstmap run ARGS` in process: exit code, parsed stdout (None when empty), stderr
    without the line that says whether the app was synthesized."""
    result = CliRunner().invoke(
        cli_app,
        ["run", "--app-dir", str(app_dir), "--retry-time-scale", "0", "--no-progress", *args],
        catch_exceptions=False,
    )
    stdout = result.stdout.strip()
    return result.exit_code, (json.loads(stdout) if stdout else None), without_synth_line(result.stderr)


def total_bytes(files: dict[str, bytes], *, without: tuple[str, ...] = ()) -> str:
    return str(sum(len(body) for name, body in files.items() if name not in without))


# ------------------------------------------------------------------------------------ runs


def test_every_object_is_processed_and_its_output_written_under_the_output_prefix(
    objects_app: Path, input_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    code, output, stderr = burstmap_run(
        objects_app, "--input-dir", str(input_dir), "--output-dir", str(out), "--stats"
    )

    assert code == 0, stderr
    assert output["total_sum"] == total_bytes(FILES)  # combine summed every compute's byte count
    assert (output["succeeded"], output["failed"], output["failed_items"]) == (len(FILES), 0, [])
    assert output["stats"]["invocations"] == len(FILES) + 1  # one compute an object, then combine; no start
    copies = {
        path.relative_to(out / "output").as_posix(): path.read_bytes()
        for path in (out / "output").rglob("*")
        if path.is_file()
    }
    assert copies == {name: body.upper() for name, body in FILES.items()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert output["manifest"].endswith("/manifest.json")
    results = [
        value
        for entry in manifest["ResultFiles"]["SUCCEEDED"]
        for value in json.loads((out / Path(entry["Key"]).name).read_text())
    ]
    assert sorted(results) == sorted(len(body) for body in FILES.values())


def test_batches_of_objects_give_the_same_total(objects_app: Path, input_dir: Path) -> None:
    code, output, stderr = burstmap_run(
        objects_app, "--input-dir", str(input_dir), "--batch-size", "3", "--stats"
    )

    assert code == 0, stderr
    assert (output["total_sum"], output["succeeded"]) == (total_bytes(FILES), len(FILES))
    assert output["stats"]["invocations"] == 3 + 1  # ceil(7 / 3) batches, then combine


def test_a_failing_object_is_reported_and_the_others_are_still_processed(
    objects_app: Path, input_dir: Path, tmp_path: Path
) -> None:
    """The job parameters reach every compute (the Pass keeps them); the Map tolerates one failure."""
    out = tmp_path / "out"
    parameters = json.dumps({"fail_keys": ["input/c/d.txt"]})

    code, output, stderr = burstmap_run(
        objects_app, "--input-dir", str(input_dir), "--parameters", parameters, "--output-dir", str(out)
    )

    assert code == 0, stderr
    assert output["total_sum"] == total_bytes(FILES, without=("c/d.txt",))
    assert (output["succeeded"], output["failed"]) == (len(FILES) - 1, 1)
    [failed] = output["failed_items"]
    assert failed["item"]["key"] == "input/c/d.txt"
    assert failed["error"] == "ObjectRejected"
    assert not (out / "output" / "c" / "d.txt").exists()
    assert (out / "output" / "c" / "e" / "f.csv").read_bytes() == FILES["c/e/f.csv"].upper()
    manifest = json.loads((out / "manifest.json").read_text())
    records = [
        record
        for entry in manifest["ResultFiles"]["FAILED"]
        for record in json.loads((out / Path(entry["Key"]).name).read_text())
    ]
    assert [(json.loads(r["Input"])["item"]["key"], r["Error"]) for r in records] == [
        ("input/c/d.txt", "ObjectRejected")
    ]
    assert json.loads(records[0]["Cause"])["errorMessage"] == "input/c/d.txt is on the fail list"


def test_failures_beyond_the_tolerance_fail_the_job_naming_the_first_object(
    objects_app: Path, input_dir: Path
) -> None:
    parameters = json.dumps({"fail_keys": ["input/h.txt", "input/b.txt"]})

    code, output, stderr = burstmap_run(
        objects_app, "--input-dir", str(input_dir), "--parameters", parameters
    )

    assert code == 1 and output is None
    # Items are listed in key order: a.txt is 0, b.txt is 1.
    assert stderr.splitlines() == [
        "burstmap: execution FAILED: States.ExceedToleratedFailureThreshold: "
        "The specified tolerated failure threshold was exceeded",
        "burstmap: first failing item 1 (input/b.txt): ObjectRejected: input/b.txt is on the fail list "
        "(1 other item failed)",
    ]


def test_an_empty_input_dir_is_a_job_over_no_objects(objects_app: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    code, output, stderr = burstmap_run(objects_app, "--input-dir", str(empty))

    assert code == 0, stderr
    assert (output["total_sum"], output["succeeded"], output["failed"]) == ("0", 0, 0)


def test_run_local_takes_objects_from_memory_and_an_input_without_parameters(objects_app: Path) -> None:
    result = run_local(
        app_dir=objects_app, input_objects={"x.txt": b"abc", "y/z.txt": "d\u00e9f"}, retry_time_scale=0
    )

    assert result.succeeded, (result.error, result.cause)
    assert result.output["total_sum"] == str(3 + len("d\u00e9f".encode()))
    assert result.output["succeeded"] == 2


def test_objects_already_on_an_endpoint_are_processed_there(objects_app: Path) -> None:
    """--endpoint-url: the objects are on an S3 server the user runs; only those under input/ are items,
    and the outputs stay on that server."""
    bucket = objects_source(prepare_app(objects_app).state_machine().definition).bucket  # type: ignore[union-attr]
    with LocalS3() as s3:
        s3.ensure_bucket(bucket)
        client = s3.client()
        for key, body in {
            "input/one": b"1",
            "input/two": b"22",
            "inputs/not-me": b"333",
            "other": b"4444",
        }.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)

        code, output, stderr = burstmap_run(objects_app, "--endpoint-url", s3.endpoint_url)

        assert code == 0, stderr
        assert (output["total_sum"], output["succeeded"]) == ("3", 2)
        listed = client.list_objects_v2(Bucket=bucket, Prefix="output/")["Contents"]
        assert {entry["Key"] for entry in listed} == {"output/one", "output/two"}
        assert client.get_object(Bucket=bucket, Key="output/one")["Body"].read() == b"1"


# ------------------------------------------------------------------------------------ refusals


def test_size_or_items_for_an_objects_app_is_refused_with_the_reason(objects_app: Path) -> None:
    code, output, stderr = burstmap_run(objects_app, "--size", "3")

    assert (code, output) == (2, None)
    assert stderr.splitlines() == [
        "burstmap: this app's items are the objects under s3://burstmapobjects-jobbucket9833d82b/input/ "
        "(BurstCompute input_prefix), so its input takes no size (burstmap run --size or --items): upload "
        "the objects with input_dir (burstmap run --input-dir DIR) and pass only parameters, if any"
    ]
    with pytest.raises(JobInputError, match="so its input takes no items "):
        run_local(app_dir=objects_app, items=[1, 2], input_objects={"a": b"a"})


def test_input_dir_for_an_app_over_input_items_is_refused(input_dir: Path) -> None:
    code, output, stderr = burstmap_run(FAULTY_APP, "--input-dir", str(input_dir))

    assert (code, output) == (2, None)
    assert "this app takes its items from the job input, not from S3 objects" in stderr
    assert "give exactly one of size, items or items_file (burstmap run --size N or --items FILE)" in stderr


def test_what_cannot_describe_an_objects_job_is_refused_before_the_app_is_synthesized(tmp_path: Path) -> None:
    """tmp_path holds no app: each refusal comes before anything looks for one."""
    code, _, stderr = burstmap_run(tmp_path, "--input-dir", str(tmp_path / "missing"))
    assert code == 2
    assert "input_dir" in stderr and "is not a directory" in stderr

    code, _, stderr = burstmap_run(tmp_path)
    assert code == 2
    assert (
        "give exactly one of --size N or --items FILE (or, for an app whose items are S3 objects, " in stderr
    )

    with pytest.raises(JobInputError, match="input_dir or input_objects with the objects to process"):
        run_local(app_dir=tmp_path)
    with pytest.raises(JobInputError, match="keys are object keys below the input prefix"):
        run_local(app_dir=tmp_path, input_objects={"/abs": b""})
    with pytest.raises(JobInputError, match=r"input_objects\['a'\] must be bytes or str"):
        run_local(app_dir=tmp_path, input_objects={"a": 1})  # type: ignore[dict-item]


def test_input_dir_is_refused_for_a_job_on_aws(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["run", "--stack", "S", "--input-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert result.stderr.startswith("burstmap: --input-dir uploads to the local S3 only")


# ------------------------------------------------------------------------------------ detection


def test_objects_source_is_read_from_the_synthesized_definition(objects_app: Path) -> None:
    definition = prepare_app(objects_app).state_machine().definition

    assert objects_source(definition) == ObjectsSource(
        bucket="burstmapobjects-jobbucket9833d82b", input_prefix="input/", output_prefix="output/"
    )
    assert objects_source(prepare_app(FAULTY_APP).state_machine().definition) is None
    reader = definition["States"]["MapS3Objects"]["ItemReader"]["Parameters"]
    reader["Bucket.$"] = reader.pop("Bucket")  # a listing the input names is driven by the input
    assert objects_source(definition) is None
