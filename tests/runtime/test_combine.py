"""The default combiner (burstmap.runtime.combine) and its Lambda against moto S3 with AWS's ResultWriter
layout: exact sums, counts, failures, memory."""

from __future__ import annotations

import json
import sys
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from burstmap.lambdas.combine import handler as combine_module
from burstmap.lambdas.example_compute.handler import count_strings, count_strings_range
from result_files import (
    MAP_RUN_ARN,
    child_arn,
    failed_batch_record,
    failed_record,
    succeeded_batch_record,
    succeeded_record,
    write_map_run,
)

from burstmap.runtime import combine as combine_runtime
from burstmap.runtime.combine import combine, exact_sum, failed_report, summarize
from burstmap.runtime.concurrent_reads import DEFAULT_WORKERS
from burstmap.runtime.contracts import InvalidCombineEvent, InvalidResult, int_to_decimal
from burstmap.runtime.results import ItemResult, ResultReadError

BUCKET = "burstmap-results"


@pytest.fixture
def default_int_digits_limit() -> Iterator[None]:
    """Python's default 4,300-digit int<->str limit (importing the combine handler sets it to 0)."""
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    yield
    sys.set_int_max_str_digits(previous)


def event_for(manifest_key: str, batched: bool | None = None) -> dict[str, Any]:
    """The Combine task's payload as BurstCompute builds it (``batched`` absent when None)."""
    event: dict[str, Any] = {
        "results": {
            "MapRunArn": MAP_RUN_ARN,
            "ResultWriterDetails": {"Bucket": BUCKET, "Key": manifest_key},
        },
        "parameters": {},
        "count": 0,
    }
    if batched is not None:
        event["batched"] = batched
    return event


def a(i: int) -> str:
    return int_to_decimal(count_strings(i))


# ---------------------------------------------------------------------------------------------------
# a realistic map run


def test_sum_over_several_files_with_batches_failures_and_empty_pending(s3: Any) -> None:
    succeeded_0 = [succeeded_record(i, i, i, a(i)) for i in range(0, 40)]
    succeeded_1 = [
        succeeded_batch_record(
            100 + b,
            list(range(40 + 10 * b, 50 + 10 * b)),
            list(range(40 + 10 * b, 50 + 10 * b)),
            [a(i) for i in range(40 + 10 * b, 50 + 10 * b)],
        )
        for b in range(3)
    ]
    succeeded_2 = [succeeded_record(200, 70, 70, int(a(5)))]  # a plain JSON integer result
    failed_0 = [failed_record(300, 71, 71), failed_batch_record(301, [72, 73, 74], [72, 73, 74])]
    key = write_map_run(
        s3,
        BUCKET,
        {"SUCCEEDED": [succeeded_0, succeeded_1, succeeded_2], "FAILED": [failed_0], "PENDING": []},
    )
    output = combine(event_for(key), s3=s3)
    expected = sum(count_strings(i) for i in range(70)) + count_strings(5)
    assert output == {
        "total_sum": str(expected),
        "succeeded": 71,
        "failed": 4,
        "failed_items": [
            {"index": 71, "item": 71, "error": "ValueError"},
            {"index": 72, "item": 72, "error": "Sandbox.Timedout"},
            {"index": 73, "item": 73, "error": "Sandbox.Timedout"},
            {"index": 74, "item": 74, "error": "Sandbox.Timedout"},
        ],
        "manifest": f"s3://{BUCKET}/{key}",
    }
    json.dumps(output)


def test_the_article_job_size_1024_total_matches_the_reference_sum(s3: Any) -> None:
    """Both the jump-per-item and the batch path, read back from S3, give the exact job total."""
    values = count_strings_range(0, 1024)
    files = [
        [succeeded_record(i, i, i, int_to_decimal(values[i])) for i in range(0, 512)],
        [
            succeeded_batch_record(
                1000 + b,
                list(range(s, s + 64)),
                list(range(s, s + 64)),
                [int_to_decimal(v) for v in values[s : s + 64]],
            )
            for b, s in enumerate(range(512, 1024, 64))
        ],
    ]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": files, "FAILED": [], "PENDING": []})
    output = combine(event_for(key), s3=s3)
    assert output["total_sum"] == str(sum(values))
    assert (output["succeeded"], output["failed"], output["failed_items"]) == (1024, 0, [])


@pytest.mark.usefixtures("default_int_digits_limit")
def test_sums_results_of_tens_of_thousands_of_digits(s3: Any) -> None:
    values = count_strings_range(16_380, 16_384)
    key = write_map_run(
        s3,
        BUCKET,
        {
            "SUCCEEDED": [
                [succeeded_record(n, 16_380 + n, 16_380 + n, int_to_decimal(v)) for n, v in enumerate(values)]
            ]
        },
    )
    total = summarize(BUCKET, key, s3=s3)["total_sum"]
    assert len(total) > 35_000
    assert total == int_to_decimal(sum(values))


@pytest.mark.parametrize("output_type", ["JSON", "JSONL"])
def test_compact_layout(s3: Any, output_type: str) -> None:
    """COMPACT: outputs only; a batch's output is its list; failed children still NONE records."""
    key = write_map_run(
        s3,
        BUCKET,
        {
            "SUCCEEDED": [["5", ["6", "7"], 8], [["100"]]],
            "FAILED": [[failed_record(9, 9, "nine")]],
            "PENDING": [],
        },
        output_type=output_type,
    )
    output = combine(event_for(key), s3=s3)
    assert (output["total_sum"], output["succeeded"], output["failed"]) == ("126", 5, 1)
    assert output["failed_items"] == [{"index": 9, "item": "nine", "error": "ValueError"}]


def test_compact_batched_run_over_several_files_and_a_failed_file(s3: Any) -> None:
    """BurstCompute's default: batches of results in several SUCCEEDED files, failed batches in full."""
    values = count_strings_range(0, 200)
    batches = [list(range(start, min(200, start + 50))) for start in range(0, 200, 50)]
    succeeded = [
        [[a(i) for i in batches[0]], [a(i) for i in batches[1]]],  # two batch outputs in one file
        [[a(i) for i in range(100, 150)]],
        [[a(150)]],  # a batch of one (the last, short batch) is still a list
    ]
    failed = [[failed_batch_record(7, list(range(151, 200)), list(range(151, 200)))]]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": succeeded, "FAILED": failed, "PENDING": []})

    output = combine(event_for(key, batched=True), s3=s3)

    assert output["total_sum"] == str(sum(values[:151]))
    assert (output["succeeded"], output["failed"]) == (151, 49)
    assert output["failed_items"] == [
        {"index": i, "item": i, "error": "Sandbox.Timedout"} for i in range(151, 200)
    ]


def test_compact_unbatched_run_over_several_files_and_a_failed_file(s3: Any) -> None:
    succeeded = [[a(i) for i in range(0, 30)], [a(i) for i in range(30, 60)], [int(a(60))]]
    failed = [[failed_record(61, 61, 61), failed_record(62, 62, 62)]]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": succeeded, "FAILED": failed, "PENDING": []})

    output = combine(event_for(key, batched=False), s3=s3)

    assert output["total_sum"] == str(sum(count_strings(i) for i in range(61)))
    assert (output["succeeded"], output["failed"]) == (61, 2)
    assert [f["index"] for f in output["failed_items"]] == [61, 62]


def test_compact_unbatched_list_output_is_one_item_not_a_batch(s3: Any) -> None:
    """Without the flag a list would be split into items; with batched=false it is one (bad) result."""
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1", ["2", "3"]]], "FAILED": [], "PENDING": []})

    assert combine(event_for(key), s3=s3)["succeeded"] == 3  # the guess, without the flag
    with pytest.raises(InvalidResult, match=r"record 1 is \[\"2\", \"3\"\]"):
        combine(event_for(key, batched=False), s3=s3)


def test_compact_batched_output_must_be_a_list(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [[["1", "2"], "3"]], "FAILED": [], "PENDING": []})
    with pytest.raises(InvalidResult, match=r"SUCCEEDED_0.json record 1\) is \"3\": a batched compute"):
        combine(event_for(key, batched=True), s3=s3)


def test_the_batched_flag_must_be_a_boolean(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [], "FAILED": [], "PENDING": []})
    with pytest.raises(InvalidCombineEvent, match='"batched" must be true or false'):
        combine({**event_for(key), "batched": "yes"}, s3=s3)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_the_local_engines_compact_files_read_back_exactly(s3: Any, batch_size: int) -> None:
    """burstmap.local.dmap.result_writer writes what combine reads: several files, COMPACT, FAILED in full."""
    from burstmap.local.dmap.result_writer import ResultWriter, WriterConfig

    writer = ResultWriter(
        s3, BUCKET, "results", MAP_RUN_ARN, "run-1", WriterConfig("COMPACT", "JSON"), max_file_bytes=2048
    )
    try:
        for start in range(0, 100, batch_size):
            indices = list(range(start, min(100, start + batch_size)))
            if 40 in indices:  # one child fails
                record = (
                    failed_record(start, start, start)
                    if batch_size == 1
                    else failed_batch_record(start, indices, indices)
                )
                writer.add_failed(record)
                continue
            outputs: Any = [a(i) for i in indices] if batch_size > 1 else a(start)
            writer.add_succeeded({"ExecutionArn": child_arn(start), "Status": "SUCCEEDED"}, outputs)
        details = writer.finish()
    finally:
        writer.close()
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=details["Key"])["Body"].read())
    assert len(manifest["ResultFiles"]["SUCCEEDED"]) >= 4  # several files (2 KiB each at most)

    output = combine(event_for(details["Key"], batched=batch_size > 1), s3=s3)

    failed = [i for i in range(100) if i // batch_size == 40 // batch_size]
    assert output["total_sum"] == str(sum(count_strings(i) for i in range(100) if i not in failed))
    assert (output["succeeded"], output["failed"]) == (100 - batch_size, batch_size)
    assert [f["index"] for f in output["failed_items"]] == failed


def test_empty_map_run(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [], "FAILED": [], "PENDING": []})
    assert combine(event_for(key), s3=s3) == {
        "total_sum": "0",
        "succeeded": 0,
        "failed": 0,
        "failed_items": [],
        "manifest": f"s3://{BUCKET}/{key}",
    }


def test_failed_count_is_exact_and_the_report_keeps_the_first_100(s3: Any) -> None:
    failed_files = [[failed_record(n, n, f"item-{n}") for n in range(f * 80, f * 80 + 80)] for f in range(3)]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1"]], "FAILED": failed_files})
    output = combine(event_for(key), s3=s3)
    assert output["failed"] == 240
    assert [entry["index"] for entry in output["failed_items"]] == list(range(100))


def test_the_failed_report_stays_small_when_items_are_large() -> None:
    large = [ItemResult("FAILED", None, n, "x" * 20_000, "E") for n in range(10)]
    count, reports = failed_report(iter(large))
    assert count == 10
    assert 0 < len(reports) < 10
    assert len(json.dumps(reports)) <= 64 * 1024


# ---------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("bad", [{"x": 1}, 1.5, True, "12a", None, ["1", "2"]])
def test_a_result_that_is_not_an_integer_names_the_item(s3: Any, bad: Any) -> None:
    key = write_map_run(
        s3, BUCKET, {"SUCCEEDED": [[succeeded_record(1, 5, "five", "1"), succeeded_record(2, 6, "six", bad)]]}
    )
    with pytest.raises(InvalidResult) as caught:
        combine(event_for(key), s3=s3)
    message = str(caught.value)
    assert message.startswith(
        f'The result of item 6 (value "six") of child execution {child_arn(2)} in s3://'
    )
    assert f"is {json.dumps(bad)}: the default combiner adds integers or decimal strings" in message
    assert "burstmap.runtime.results.iter_results" in message


def test_a_compact_result_that_is_not_an_integer_names_the_record(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1", {"oops": 1}]]})
    with pytest.raises(
        InvalidResult, match=r'The result of record s3://.*/SUCCEEDED_0.json record 1 is \{"oops": 1\}'
    ):
        combine(event_for(key), s3=s3)


@pytest.mark.parametrize(
    "event",
    [{}, {"results": {}}, {"results": {"ResultWriterDetails": {"Bucket": "b"}}}, {"results": [1]}, "x"],
)
def test_an_event_without_result_writer_details(event: Any) -> None:
    with pytest.raises(
        InvalidCombineEvent,
        match=r'The combine function expects \{"results": \{"ResultWriterDetails"'
        r'.*give the Distributed Map a ResultWriter and ResultPath "\$.results"',
    ):
        combine(event)


def test_a_missing_manifest(s3: Any) -> None:
    with pytest.raises(
        ResultReadError, match=rf"Cannot read s3://{BUCKET}/results/x/manifest.json: NoSuchKey"
    ):
        combine(event_for("results/x/manifest.json"), s3=s3)


def test_the_handler_sums_the_results_the_event_names(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = write_map_run(
        s3, BUCKET, {"SUCCEEDED": [[succeeded_record(1, 0, 0, "5"), succeeded_record(2, 1, 1, 7)]]}
    )
    monkeypatch.setattr(combine_runtime, "default_s3_client", lambda: s3)
    output = combine_module.handler(event_for(key), None)
    assert (output["total_sum"], output["succeeded"], output["failed"]) == ("12", 2, 0)
    assert combine_module.WORKERS == DEFAULT_WORKERS


def test_the_handler_lifts_the_int_string_limit_for_user_code() -> None:
    assert combine_module.handler is not None
    assert sys.get_int_max_str_digits() in (0, 4300)  # 0 after import, unless a fixture restored it
    import importlib

    importlib.reload(combine_module)
    assert sys.get_int_max_str_digits() == 0


# ---------------------------------------------------------------------------------------------------
# bounded memory


def test_the_sum_holds_one_result_at_a_time() -> None:
    """exact_sum must consume a stream, never collect it: count the results alive while it runs."""
    alive = 0
    max_alive = 0

    def released() -> None:
        nonlocal alive
        alive -= 1

    def stream() -> Iterator[ItemResult]:
        nonlocal alive, max_alive
        for n in range(50_000):
            result = ItemResult("SUCCEEDED", str(n), n, n)
            alive += 1
            max_alive = max(max_alive, alive)
            weakref.finalize(result, released)
            yield result
            del result

    total, count = exact_sum(stream())
    assert (total, count) == (sum(range(50_000)), 50_000)
    assert max_alive <= 2


def test_combining_many_files_does_not_load_every_record(s3: Any) -> None:
    """100,000 NONE records in 25 files: held at once they would take far more than the peak allowed."""
    files = [
        [succeeded_record(f * 4000 + n, f * 4000 + n, f * 4000 + n, str(n)) for n in range(4000)]
        for f in range(25)
    ]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": files, "FAILED": [], "PENDING": []})
    del files
    tracemalloc.start()
    try:
        output = combine(event_for(key), s3=s3, workers=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert output["succeeded"] == 100_000
    assert output["total_sum"] == str(25 * sum(range(4000)))
    # Measured: these records all held at once (list(iter_results(...))) peak at ~65 MB; streamed ~21 MB,
    # most of it moto's copies of the files being read.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_combining_many_compact_files_does_not_load_every_result(s3: Any) -> None:
    """100,000 COMPACT results (2,000 batches of 50) in 20 files: a stream, never one list of results."""
    result = "7" * 300
    files = [[[result] * 50 for _ in range(100)] for _ in range(20)]
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": files, "FAILED": [], "PENDING": []})
    del files
    tracemalloc.start()
    try:
        output = combine(event_for(key, batched=True), s3=s3, workers=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert output["succeeded"] == 100_000
    assert output["total_sum"] == str(100_000 * int(result))
    # Measured: list(iter_results(..., batched=True)) peaks at ~60 MB; streamed ~16 MB (moto's copies of
    # the four files being read, 1 MiB read chunks, at most ~3,000 results in the hand-over queue).
    assert peak < 32 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
