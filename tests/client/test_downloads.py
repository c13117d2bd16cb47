"""Reading a job's results back (burstmap.client.results), for both backends: finding the manifests, the
first failing item, and the copy on disk. moto's S3 holds ResultWriter output laid out as AWS writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_fakes import BUCKET, DEFINITION, REGION, child_record, lambda_cause
from moto import mock_aws

from burstmap.client import results
from burstmap.runtime.results import ResultReadError

RUN_A = "arn:aws:states:us-east-1:123456789012:mapRun:demo/ComputeOverS3:run-a"
RUN_B = "arn:aws:states:us-east-1:123456789012:mapRun:demo/ComputeOverPayload:run-b"


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def write_map_run(s3: Any, run_arn: str, files: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
    """A map run's ResultWriter output under results/<run id>/: ``{"SUCCEEDED_0.json": [records]}``."""
    folder = f"results/{results.map_run_id(run_arn)}"
    listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for name, records in files.items():
        body = json.dumps(records).encode()
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/{name}", Body=body)
        listed[name.split("_")[0]].append({"Key": f"{folder}/{name}", "Size": len(body)})
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": run_arn, "ResultFiles": listed}
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/manifest.json", Body=json.dumps(manifest).encode())
    return BUCKET, f"{folder}/manifest.json"


def failure(index: int) -> dict[str, Any]:
    return child_record(index, f"item-{index}", error="ValueError", cause=lambda_cause(f"bad {index}"))


def test_the_definition_says_where_each_map_run_wrote_its_manifest(s3: Any) -> None:
    written = write_map_run(s3, RUN_B, {"SUCCEEDED_0.json": [child_record(0, "a", output=1)]})

    assert results.result_writers(DEFINITION) == [(BUCKET, "results")]  # both Maps share one writer
    assert results.manifests_of_map_runs(s3, DEFINITION, [RUN_A, RUN_B]) == [written]  # run-a wrote none
    assert results.manifest_named_by({"manifest": f"s3://{BUCKET}/k/manifest.json"}) == (
        BUCKET,
        "k/manifest.json",
    )
    assert results.manifest_named_by({"total_sum": "1"}) is None


def test_writers_are_found_at_any_depth_and_only_with_literal_buckets() -> None:
    inner = {"States": {"M": {"Type": "Map", "ResultWriter": {"Arguments": {"Bucket": "b2", "Prefix": "p"}}}}}
    definition = {
        "States": {
            "P": {"Type": "Parallel", "Branches": [inner]},
            "Dynamic": {"Type": "Map", "ResultWriter": {"Parameters": {"Bucket.$": "$.bucket"}}},
            "Outer": {
                "Type": "Map",
                "ItemProcessor": inner,
                "ResultWriter": {"Parameters": {"Bucket": "b1"}},
            },
        }
    }
    assert results.result_writers(definition) == [("b2", "p"), ("b1", "")]


def test_a_manifest_that_cannot_be_checked_is_a_read_error(s3: Any) -> None:
    with pytest.raises(ResultReadError, match="Cannot read s3://no-such-bucket/results/run-a/manifest.json"):
        results.manifests_of_map_runs(
            s3,
            {
                "States": {
                    "M": {"ResultWriter": {"Parameters": {"Bucket": "no-such-bucket", "Prefix": "results"}}}
                }
            },
            [RUN_A],
        )


def test_the_first_failure_is_the_lowest_index_of_every_readable_manifest(s3: Any) -> None:
    first_run = write_map_run(s3, RUN_A, {"FAILED_0.json": [failure(7), failure(9)]})
    second_run = write_map_run(s3, RUN_B, {"FAILED_0.json": [failure(4)]})
    unreadable = (BUCKET, "results/gone/manifest.json")

    first, count = results.first_failure(s3, [first_run, unreadable, second_run])

    assert (first.index, first.item, first.error, count) == (4, "item-4", "ValueError", 3)
    assert [f.index for f in results.failed_items(s3, [first_run, second_run])] == [7, 9, 4]


def test_one_manifest_is_copied_flat_with_its_files_and_the_failed_items(s3: Any, tmp_path: Path) -> None:
    manifest = write_map_run(
        s3, RUN_A, {"SUCCEEDED_0.json": [child_record(0, "a", output=1)], "FAILED_0.json": [failure(1)]}
    )

    downloaded = results.download_results(s3, [manifest], tmp_path / "out")

    assert downloaded.manifest == tmp_path / "out" / "manifest.json"
    assert json.loads(downloaded.manifest.read_text())["MapRunArn"] == RUN_A
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in downloaded.result_files) == [
        "FAILED_0.json",
        "SUCCEEDED_0.json",
    ]
    assert json.loads((tmp_path / "out" / "failed_items.json").read_text()) == [
        {"index": 1, "item": "item-1", "error": "ValueError", "cause": lambda_cause("bad 1")}
    ]
    assert downloaded.failed_count == 1
    assert downloaded.summary()["failed_items"] == str(tmp_path / "out" / "failed_items.json")
    assert set(downloaded.files) == {downloaded.manifest, *downloaded.result_files, downloaded.failed_items}


def test_several_manifests_get_one_folder_each_and_one_failed_items_file(s3: Any, tmp_path: Path) -> None:
    first_run = write_map_run(s3, RUN_A, {"FAILED_0.json": [failure(2)]})
    second_run = write_map_run(s3, RUN_B, {"SUCCEEDED_0.json": [child_record(0, "a", output=1)]})

    downloaded = results.download_results(s3, [first_run, second_run], tmp_path)

    assert [p.relative_to(tmp_path).as_posix() for p in downloaded.manifests] == [
        "run-a/manifest.json",
        "run-b/manifest.json",
    ]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in downloaded.result_files) == [
        "run-a/FAILED_0.json",
        "run-b/SUCCEEDED_0.json",
    ]
    assert [entry["index"] for entry in json.loads((tmp_path / "failed_items.json").read_text())] == [2]


def test_a_result_key_outside_the_manifest_folder_is_written_by_its_name(s3: Any, tmp_path: Path) -> None:
    manifest = {
        "DestinationBucket": BUCKET,
        "ResultFiles": {"SUCCEEDED": [{"Key": "results/run-a/../../../escape.json", "Size": 2}]},
    }
    s3.put_object(Bucket=BUCKET, Key="results/run-a/../../../escape.json", Body=b"[]")
    s3.put_object(Bucket=BUCKET, Key="results/run-a/manifest.json", Body=json.dumps(manifest).encode())

    downloaded = results.download_results(s3, [(BUCKET, "results/run-a/manifest.json")], tmp_path / "out")

    assert downloaded.result_files == [tmp_path / "out" / "escape.json"]


def test_in_a_failed_batch_the_item_that_raised_is_the_first_failure(s3: Any) -> None:
    """A batch's FAILED record holds all its items with one error; compute_handler's [item i] mark says
    which raised, so the report names item 12, not the batch's first index 10."""
    cause = lambda_cause("[item 12] bad value 12")
    batch = child_record(0, None, error="ValueError", cause=cause)
    batch["Input"] = json.dumps(
        {"Items": [{"item": f"v{i}", "index": i} for i in (10, 11, 12, 13)], "BatchInput": {"parameters": {}}}
    )
    manifest = write_map_run(s3, RUN_A, {"FAILED_0.json": [batch]})

    first, count = results.first_failure(s3, [manifest])

    assert first is not None and (first.index, first.item, first.error) == (12, "v12", "ValueError")
    assert count == 4  # every item of the batch failed with it
    assert results.failing_index(first) == 12
