"""combine_handler: a combine Lambda of one reduce function over the succeeded results, with the failed
items at hand; and the custom combiners the docstrings show, run as written, once failures are tolerated."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest
from result_files import MAP_RUN_ARN, failed_batch_record, failed_record, succeeded_record, write_map_run

import burstmap.runtime.combine as combine_module
import burstmap.runtime.results as results_module
from burstmap.runtime.combine import CombineJob, combine_handler
from burstmap.runtime.contracts import InvalidCombineEvent

BUCKET = "burstmap-results"


def event_for(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "results": {"MapRunArn": MAP_RUN_ARN, "ResultWriterDetails": {"Bucket": BUCKET, "Key": key}},
        "parameters": {"scale": 2},
        "count": 7,
        "batched": False,
        **extra,
    }


def floats_with_failures(s3: Any) -> str:
    """Four succeeded items (COMPACT records: the outputs), one failed item, one timed-out batch of two."""
    return write_map_run(
        s3,
        BUCKET,
        {
            "SUCCEEDED": [[1e16, 1.0], [1.0, -1e16]],
            "FAILED": [[failed_record(4, 4, "x", "ValueError"), failed_batch_record(5, [5, 6], ["y", "z"])]],
        },
    )


def test_the_reduce_function_gets_the_succeeded_values_and_the_job(s3: Any) -> None:
    seen: dict[str, Any] = {}

    def reduce(results: Any, job: CombineJob) -> Any:
        seen["values"] = sorted(results)
        seen["job"] = job
        return {"n": len(seen["values"]), "big": 2**60}

    output = combine_handler(reduce, s3=s3)(event_for(floats_with_failures(s3)), None)

    assert output == {"n": 4, "big": 2**60}  # a dict is the reduce function's to shape
    assert seen["values"] == [-1e16, 1.0, 1.0, 1e16]
    job = seen["job"]
    assert (job.parameters, job.count) == ({"scale": 2}, 7)
    assert job.manifest == f"s3://{BUCKET}/results/{MAP_RUN_ARN.rsplit(':', 1)[1]}/manifest.json"
    assert len(job.failed) == 3
    assert [(f.index, f.item, f.error) for f in job.failed] == [
        (4, "x", "ValueError"),
        (5, "y", "Sandbox.Timedout"),
        (6, "z", "Sandbox.Timedout"),
    ]
    assert job.failed.report(limit=1) == [{"index": 4, "item": "x", "error": "ValueError"}]


def test_a_big_integer_returned_travels_as_its_decimal_string(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [["1", "2"]]})
    handler = combine_handler(lambda results, job: sum(int(v) for v in results) * 2**60, s3=s3)
    assert handler(event_for(key), None) == str(3 * 2**60)


def test_a_reduce_function_may_stop_early(s3: Any) -> None:
    key = write_map_run(s3, BUCKET, {"SUCCEEDED": [[n] for n in range(40)]})
    assert combine_handler(lambda results, job: next(iter(results)), s3=s3, workers=4)(
        event_for(key), None
    ) in range(40)


def test_an_event_without_a_manifest_is_refused_by_name(s3: Any) -> None:
    with pytest.raises(InvalidCombineEvent, match="give the Distributed Map a ResultWriter"):
        combine_handler(lambda results, job: None, s3=s3)({"parameters": {}}, None)


# ------------------------------------------------------------------------------------------ docstrings
def docstring_example(module: Any) -> str:
    """The last indented code block after '::' in a module's docstring (its combiner example)."""
    blocks = re.findall(r"::\n\n((?:    .*\n|\n)+)", module.__doc__)
    assert blocks and "handler" in blocks[-1], module.__name__
    return textwrap.dedent(blocks[-1])


def test_the_mean_in_the_combine_docstring_is_float_exact_with_failures(s3: Any, monkeypatch) -> None:
    namespace: dict[str, Any] = {}
    exec(docstring_example(combine_module), namespace)  # noqa: S102 - the documented example, as written
    handler = namespace["handler"]
    import burstmap.runtime.s3_objects as s3_objects

    monkeypatch.setattr(s3_objects, "_S3_CLIENT", s3)  # the Lambda's own client, pointed at moto
    output = handler(event_for(floats_with_failures(s3)), None)

    assert output["mean"] == 0.5  # (1e16 + 1 + 1 - 1e16) / 4, exactly
    assert sum([1e16, 1.0, 1.0, -1e16]) / 4 == 0.0  # what a plain sum loses in that order
    assert (output["succeeded"], output["failed"]) == (4, 3)
    assert [entry["index"] for entry in output["failed_items"]] == [4, 5, 6]
    assert output["manifest"].startswith(f"s3://{BUCKET}/")


def test_the_results_docstring_combiner_runs_once_failures_are_tolerated(s3: Any, monkeypatch) -> None:
    key = write_map_run(
        s3,
        BUCKET,
        {
            "SUCCEEDED": [[succeeded_record(0, 0, 0, "12"), succeeded_record(1, 1, 1, "40")]],
            "FAILED": [[failed_record(2, 2, 2)]],
        },
    )
    namespace: dict[str, Any] = {}
    exec(docstring_example(results_module), namespace)  # noqa: S102 - the documented example, as written
    import burstmap.runtime.s3_objects as s3_objects

    monkeypatch.setattr(s3_objects, "_S3_CLIENT", s3)
    assert namespace["handler"](event_for(key), None) == {"best": "40"}
    empty = write_map_run(s3, BUCKET, {"FAILED": [[failed_record(0, 0, 0)]]}, prefix="other")
    assert namespace["handler"](event_for(empty), None) == {"best": None}
