"""burstmap.runtime.results: streaming decoders, the manifest, per-item results in every layout, buffering."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
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

from burstmap.runtime import concurrent_reads, json_stream
from burstmap.runtime.concurrent_reads import read_concurrently
from burstmap.runtime.contracts import InvalidResult, InvalidResultFile
from burstmap.runtime.json_stream import iter_json_array, iter_json_lines
from burstmap.runtime.results import ItemResult, ResultReadError, iter_failed, iter_results, read_manifest

BUCKET = "burstmap-results"


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---------------------------------------------------------------------------------------------------
# the JSON array decoder


VALUES = [
    0,
    12345678901234567890,
    -3.5e-7,
    'caf\u00e9 \u2603 \U0001f600 "quoted" \\ slash',
    {"a": [1, 2, {"b": None}], "c": True},
    [],
    {},
    "",
    False,
    None,
    "9" * 5000,
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1 << 20])
def test_json_array_decodes_every_value_whatever_the_chunk_boundaries(chunk_size: int) -> None:
    data = json.dumps(VALUES, indent=1, ensure_ascii=False).encode("utf-8")
    assert list(iter_json_array(chunked(data, chunk_size))) == VALUES


def test_json_array_does_not_cut_a_number_at_a_chunk_boundary() -> None:
    # "[123,45]" split as "[12" "3,4" "5]": a decoder that trusts the buffer end would yield 12 and 4.
    assert list(iter_json_array([b"[12", b"3,4", b"5]"])) == [123, 45]
    assert list(iter_json_array([b"[7", b"]"])) == [7]


@pytest.fixture
def default_int_digits_limit() -> Iterator[None]:
    """Python's default 4,300-digit int<->str limit, whatever another module set (combine sets it to 0)."""
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    yield
    sys.set_int_max_str_digits(previous)


@pytest.mark.usefixtures("default_int_digits_limit")
def test_json_array_reads_integers_beyond_the_4300_digit_limit() -> None:
    big = "7" * 9000
    third = int("7" * 3000)
    expected = (third * 10**3000 + third) * 10**3000 + third
    assert list(iter_json_array([f"[{big}, 1]".encode()])) == [expected, 1]
    assert json_stream.loads(f'{{"n": {big}}}') == {"n": expected}


@pytest.mark.parametrize("data", [b"", b"[]", b" [ ] \n"])
def test_json_array_empty_or_blank(data: bytes) -> None:
    if data:
        assert list(iter_json_array([data])) == []
    else:
        with pytest.raises(InvalidResultFile, match="not a JSON array: expected '\\['"):
            list(iter_json_array([data], "s3://b/k"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}', "expected '\\['"),
        (b"[1 2]", "expected ',' or ']' after element 1"),
        (b"[1, ", "expected a value after element 1"),
        (b"[1, tru]", "element 1 is not valid JSON"),
        (b"[1] [2]", "expected the end of the file"),
        (b"[1", "expected ',' or ']' after element 1"),
    ],
)
def test_json_array_rejects_malformed_files_naming_the_element(data: bytes, message: str) -> None:
    with pytest.raises(InvalidResultFile, match=message):
        list(iter_json_array(chunked(data, 2), "s3://b/SUCCEEDED_0.json"))


def test_json_array_holds_one_record_not_the_file() -> None:
    """The decoder's buffer stays near one chunk plus one record, however long the array."""
    record = json.dumps({"Output": "x" * 100})
    data = ("[" + ",".join([record] * 20_000) + "]").encode()
    seen_buffers: list[int] = []
    original = json_stream._raw_decode

    def spy(buffer: str, position: int):  # type: ignore[no-untyped-def]
        seen_buffers.append(len(buffer))
        return original(buffer, position)

    json_stream._raw_decode = spy  # type: ignore[assignment]
    try:
        count = sum(1 for _ in iter_json_array(chunked(data, 4096)))
    finally:
        json_stream._raw_decode = original  # type: ignore[assignment]
    assert count == 20_000
    assert len(data) > 2_000_000
    assert max(seen_buffers) < 2 * 4096 + len(record)


def test_json_lines_skips_blank_lines_and_names_the_bad_line() -> None:
    data = b'{"a": 1}\n\n[1, 2]\r\n"s"\n'
    assert list(iter_json_lines(chunked(data, 3))) == [{"a": 1}, [1, 2], "s"]
    with pytest.raises(InvalidResultFile, match="f.jsonl line 2 is not valid JSON"):
        list(iter_json_lines([b"1\n{oops\n"], "f.jsonl"))


# ---------------------------------------------------------------------------------------------------
# the manifest


def test_read_manifest_lists_files_by_status_in_the_destination_bucket(s3) -> None:  # type: ignore[no-untyped-def]
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


def test_read_manifest_errors_say_what_is_wrong(s3) -> None:  # type: ignore[no-untyped-def]
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


def test_none_layout_gives_one_result_per_item_with_inputs(s3) -> None:  # type: ignore[no-untyped-def]
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


def test_compact_layout_splits_batch_lists_and_has_no_inputs(s3) -> None:  # type: ignore[no-untyped-def]
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


def test_flatten_jsonl_layout(s3) -> None:  # type: ignore[no-untyped-def]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1", "2"], ["3"]]}, output_type="JSONL")
    assert read_manifest(BUCKET, key, s3=s3).files("SUCCEEDED")[0].key.endswith(".jsonl")
    assert sorted(r.output for r in iter_results(BUCKET, key, s3=s3)) == ["1", "2", "3"]


def test_a_batch_output_that_does_not_match_its_items_is_an_error(s3) -> None:  # type: ignore[no-untyped-def]
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


def test_many_files_read_concurrently_give_every_record_once(s3) -> None:  # type: ignore[no-untyped-def]
    files = [[succeeded_record(f * 100 + n, f * 100 + n, n, str(n)) for n in range(100)] for f in range(12)]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": files})
    indices = [r.index for r in iter_results(BUCKET, key, s3=s3, workers=4)]
    assert sorted(indices) == [f * 100 + n for f in range(12) for n in range(100)]


def test_concurrent_reading_buffers_a_bounded_number_of_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers may run ahead of a slow consumer by at most the hand-over queue: never the whole job."""
    monkeypatch.setattr(concurrent_reads, "RECORDS_PER_HANDOVER", 10)
    monkeypatch.setattr(concurrent_reads, "MAX_PENDING_HANDOVERS", 3)
    produced = 0
    lock = threading.Lock()

    def read(source: int) -> Iterator[int]:
        nonlocal produced
        for n in range(2_000):
            with lock:
                produced += 1
            yield source * 10_000 + n

    consumed = 0
    max_ahead = 0
    for _ in read_concurrently(list(range(6)), read, workers=3):
        consumed += 1
        if consumed % 500 == 0:
            time.sleep(0.01)  # let the producers fill every buffer
        with lock:
            max_ahead = max(max_ahead, produced - consumed)
    assert consumed == 12_000
    # queue (3 hand-overs) + one being filled per thread + the one being consumed, of 10 records each
    assert max_ahead <= (3 + 3 + 1) * 10 + 3


def test_a_reading_error_reaches_the_consumer_and_stops_the_threads() -> None:
    def read(source: int) -> Iterator[int]:
        yield source
        if source == 2:
            raise InvalidResultFile("file 2 is broken")
        yield from range(100)

    before = threading.active_count()
    with pytest.raises(InvalidResultFile, match="file 2 is broken"):
        list(read_concurrently(list(range(5)), read, workers=3))
    assert threading.active_count() == before


def test_closing_early_stops_the_threads() -> None:
    def read(source: int) -> Iterator[int]:
        yield from range(100_000)

    before = threading.active_count()
    stream = read_concurrently(list(range(4)), read, workers=4)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before


def test_jsonl_encoding_helper_round_trips() -> None:
    assert list(iter_json_lines([encode([1, {"a": 2}], "JSONL")])) == [1, {"a": 2}]
