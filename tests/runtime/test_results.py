"""burstmap.runtime.results: the manifest, and one result per item in every ResultWriter layout."""

from __future__ import annotations

from typing import Any

import pytest
from result_files import (
    MAP_RUN_ARN,
    child_arn,
    encode,
    failed_batch_record,
    failed_record,
    succeeded_batch_record,
    succeeded_record,
    write_map_run,
)

from burstmap.runtime.contracts import InvalidResult, InvalidResultFile
from burstmap.runtime.json_stream import iter_json_lines
from burstmap.runtime.results import ItemResult, ResultReadError, iter_failed, iter_results, read_manifest

BUCKET = "burstmap-results"


# ---------------------------------------------------------------------------------------------------
# the manifest


def test_read_manifest_lists_files_by_status_in_the_destination_bucket(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [[1], [2]], "FAILED": [[]]})
    manifest = read_manifest(BUCKET, key, s3=s3)
    assert manifest.map_run_arn == MAP_RUN_ARN
    assert manifest.uri == f"s3://{BUCKET}/{key}"
    assert [f.key.rsplit("/", 1)[1] for f in manifest.files("SUCCEEDED")] == [
        "SUCCEEDED_0.json",
        "SUCCEEDED_1.json",
    ]
    assert [f.status for f in manifest.files("FAILED", "PENDING")] == ["FAILED"]
    assert all(f.bucket == BUCKET for f in manifest.files("SUCCEEDED"))


def test_read_manifest_errors_say_what_is_wrong(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="not-json", Body=b"hello")
    s3.put_object(Bucket=BUCKET, Key="no-files", Body=b'{"MapRunArn": "x"}')
    s3.put_object(Bucket=BUCKET, Key="bad-list", Body=b'{"ResultFiles": {"SUCCEEDED": [{"Size": 1}]}}')
    with pytest.raises(InvalidResultFile, match="is not JSON"):
        read_manifest(BUCKET, "not-json", s3=s3)
    with pytest.raises(InvalidResultFile, match='has no "ResultFiles" object'):
        read_manifest(BUCKET, "no-files", s3=s3)
    with pytest.raises(InvalidResultFile, match="ResultFiles.SUCCEEDED must be a list of"):
        read_manifest(BUCKET, "bad-list", s3=s3)
    with pytest.raises(ResultReadError, match="Cannot read s3://burstmap-results/missing.json: NoSuchKey"):
        read_manifest(BUCKET, "missing.json", s3=s3)


# ---------------------------------------------------------------------------------------------------
# per-item results


def test_none_layout_gives_one_result_per_item_with_inputs(s3: Any) -> None:
    key = write_map_run(
        s3,
        BUCKET,
        {
            "SUCCEEDED": [
                [
                    succeeded_record(0, 0, "a", "10"),
                    succeeded_batch_record(1, [1, 2], ["b", "c"], ["11", 12]),
                ],
            ],
            "FAILED": [[failed_record(2, 3, "d"), failed_batch_record(3, [4, 5], ["e", "f"])]],
            "PENDING": [],
        },
    )
    got = list(iter_results(BUCKET, key, s3=s3, workers=1))
    assert [(r.status, r.index, r.item, r.output) for r in got] == [
        ("SUCCEEDED", 0, "a", "10"),
        ("SUCCEEDED", 1, "b", "11"),
        ("SUCCEEDED", 2, "c", 12),
        ("FAILED", 3, "d", None),
        ("TIMED_OUT", 4, "e", None),
        ("TIMED_OUT", 5, "f", None),
    ]
    assert got[1].execution_arn == child_arn(1)
    assert got[3].error == "ValueError" and "item d failed" in (got[3].cause or "")
    assert got[4].error == "Sandbox.Timedout"
    assert [r.index for r in iter_failed(BUCKET, key, s3=s3)] == [3, 4, 5]


def test_compact_layout_splits_batch_lists_and_has_no_inputs(s3: Any) -> None:
    key = write_map_run(
        s3,
        BUCKET,
        {"SUCCEEDED": [["1", ["2", "3"], 4]], "FAILED": [[failed_record(9, 9, 9)]]},
    )
    got = list(iter_results(BUCKET, key, s3=s3, workers=1))
    assert [(r.status, r.index, r.item, r.output) for r in got] == [
        ("SUCCEEDED", None, None, "1"),
        ("SUCCEEDED", None, None, "2"),
        ("SUCCEEDED", None, None, "3"),
        ("SUCCEEDED", None, None, 4),
        ("FAILED", 9, 9, None),
    ]
    assert got[1].source.endswith("SUCCEEDED_0.json record 1")


def test_flatten_jsonl_layout(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1", "2"], ["3"]]}, output_type="JSONL")
    assert read_manifest(BUCKET, key, s3=s3).files("SUCCEEDED")[0].key.endswith(".jsonl")
    assert sorted(r.output for r in iter_results(BUCKET, key, s3=s3)) == ["1", "2", "3"]


def test_a_batch_output_that_does_not_match_its_items_is_an_error(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [[succeeded_batch_record(7, [0, 1], [0, 1], "01")]]})
    with pytest.raises(InvalidResult, match=r"had 2 items but returned \"01\""):
        list(iter_results(BUCKET, key, s3=s3))


def test_item_result_describes_itself_for_messages() -> None:
    assert ItemResult(
        "SUCCEEDED", 1, 4, "x", execution_arn="arn:c", source="s3://b/k record 2"
    ).describe() == ('item 4 (value "x") of child execution arn:c in s3://b/k record 2')
    assert ItemResult("SUCCEEDED", 1, source="s3://b/k record 2").describe() == "record s3://b/k record 2"


# ---------------------------------------------------------------------------------------------------
# reading several files at once


def test_many_files_read_concurrently_give_every_record_once(s3: Any) -> None:
    files = [[succeeded_record(f * 100 + n, f * 100 + n, n, str(n)) for n in range(100)] for f in range(12)]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": files})
    indices = [r.index for r in iter_results(BUCKET, key, s3=s3, workers=4)]
    assert sorted(indices) == [f * 100 + n for f in range(12) for n in range(100)]


def test_jsonl_encoding_helper_round_trips() -> None:
    assert list(iter_json_lines([encode([1, {"a": 2}], "JSONL")])) == [1, {"a": 2}]
