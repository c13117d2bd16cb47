"""The start Lambda: payload or S3 item lists, streamed uploads, user lists, and every bad input."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from burstmap.lambdas.start.handler import handler

from burstmap.runtime import start as start_module
from burstmap.runtime.contracts import PAYLOAD_ITEMS_MAX_BYTES, InvalidInput, json_size, range_json_size
from burstmap.runtime.json_stream import body_chunks, iter_lines
from burstmap.runtime.s3_objects import upload_stream
from burstmap.runtime.start import start

BUCKET = "burstmap-jobs"
REQUEST_ID = "3f9c1b7e-0000-4000-8000-000000000001"


def run(event: Any, s3: Any = None, **kwargs: Any) -> dict[str, Any]:
    return dict(start(event, job_id=REQUEST_ID, bucket=BUCKET, s3=s3, **kwargs))


def lines_of(s3: Any, key: str) -> Iterator[bytes]:
    return iter_lines(body_chunks(s3.get_object(Bucket=BUCKET, Key=key)["Body"]))


def array_of(s3: Any, key: str) -> list[Any]:
    """The JSON array start wrote (what the Map's ItemReader with InputType JSON reads)."""
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def largest_payload_size() -> int:
    """The largest size job whose item list still fits the payload threshold."""
    low, high = 0, 100_000
    while low < high:
        middle = (low + high + 1) // 2
        if range_json_size(middle) <= PAYLOAD_ITEMS_MAX_BYTES:
            low = middle
        else:
            high = middle - 1
    return low


# ---------------------------------------------------------------------------------------------------
# payload path


def test_small_size_job_travels_in_the_payload() -> None:
    output = start({"size": 4, "parameters": {"p": 1}}, job_id=REQUEST_ID, bucket=None)
    assert output == {"source": "payload", "items": [0, 1, 2, 3], "count": 4, "parameters": {"p": 1}}


def test_items_travel_in_the_payload_with_default_parameters() -> None:
    output = start({"items": ["a", {"b": 1}, None]}, job_id=REQUEST_ID, bucket=None)
    assert output == {"source": "payload", "items": ["a", {"b": 1}, None], "count": 3, "parameters": {}}


def test_empty_job() -> None:
    assert start({"size": 0}, job_id=REQUEST_ID, bucket=None)["count"] == 0


def test_handler_reads_the_request_id_and_environment(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURSTMAP_BUCKET", BUCKET)
    monkeypatch.setenv("BURSTMAP_ITEMS_PREFIX", "lists")
    monkeypatch.setattr(start_module, "default_s3_client", lambda: s3)
    context = SimpleNamespace(aws_request_id=REQUEST_ID)
    assert handler({"size": 2}, context)["source"] == "payload"
    output = handler({"size": 2, "via_s3": True}, context)
    assert output["items_key"] == f"lists/{REQUEST_ID}.json"
    assert output["items_bucket"] == BUCKET


# ---------------------------------------------------------------------------------------------------
# the automatic switch


def test_the_switch_to_s3_happens_exactly_past_the_threshold(s3: Any) -> None:
    fits = largest_payload_size()
    at_threshold = run({"size": fits}, s3)
    past_threshold = run({"size": fits + 1}, s3)
    assert at_threshold["source"] == "payload" and at_threshold["count"] == fits
    assert json_size(at_threshold["items"]) <= PAYLOAD_ITEMS_MAX_BYTES
    assert json_size(at_threshold) < 256 * 1024
    assert past_threshold["source"] == "s3" and past_threshold["count"] == fits + 1


def test_large_item_list_goes_to_s3_as_a_json_array(s3: Any) -> None:
    items = [{"name": f"object-{n:06d}", "weight": n} for n in range(5_000)]
    assert json_size(items) > PAYLOAD_ITEMS_MAX_BYTES
    output = run({"items": items, "parameters": {"k": 1}}, s3)
    assert output == {
        "source": "s3",
        "items_bucket": BUCKET,
        "items_key": f"items/{REQUEST_ID}.json",
        "items_format": "JSON",
        "count": 5_000,
        "parameters": {"k": 1},
    }
    assert array_of(s3, output["items_key"]) == items


def test_via_s3_forces_the_s3_path_for_a_small_job(s3: Any) -> None:
    output = run({"size": 3, "via_s3": True}, s3)
    assert output["source"] == "s3"
    assert array_of(s3, output["items_key"]) == [0, 1, 2]


def test_the_items_prefix_names_the_key(s3: Any) -> None:
    assert run({"size": 1, "via_s3": True}, s3, items_prefix="/jobs/items/")["items_key"] == (
        f"jobs/items/{REQUEST_ID}.json"
    )


# ---------------------------------------------------------------------------------------------------
# a million items, streamed


class CountingS3:
    """An S3 client that checks what is uploaded without keeping it: measures start's memory, not a mock's."""

    def __init__(self) -> None:
        self.part_sizes: list[int] = []
        self.digest = hashlib.sha256()
        self.completed = False

    def _consume(self, body: bytes) -> None:
        self.digest.update(body)

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "upload-1"}

    def upload_part(self, *, Body: bytes, PartNumber: int, **_: Any) -> dict[str, str]:  # noqa: N803 - boto3 names
        self.part_sizes.append(len(Body))
        self._consume(Body)
        return {"ETag": f'"etag-{PartNumber}"'}

    def complete_multipart_upload(self, *, MultipartUpload: dict[str, Any], **_: Any) -> None:  # noqa: N803
        assert [part["PartNumber"] for part in MultipartUpload["Parts"]] == list(
            range(1, len(self.part_sizes) + 1)
        )
        self.completed = True

    def put_object(self, *, Body: bytes, **_: Any) -> None:  # noqa: N803
        self.part_sizes.append(len(Body))
        self._consume(Body)
        self.completed = True


def test_million_item_size_job_is_streamed_in_bounded_memory() -> None:
    client = CountingS3()
    tracemalloc.start()
    try:
        # S3's minimum part: several parts
        output = run({"size": 1_000_000}, client, part_bytes=5 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert output["source"] == "s3" and output["count"] == 1_000_000
    expected = hashlib.sha256(("[" + ",".join(map(str, range(1_000_000))) + "]").encode())
    assert client.completed and client.digest.hexdigest() == expected.hexdigest()
    assert client.part_sizes[0] == 5 * 1024 * 1024 and len(client.part_sizes) == 2
    # A list of a million ints alone is ~36 MB; the stream holds about one part and its copy.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_million_item_size_job_lands_in_s3_complete(s3: Any) -> None:
    output = run({"size": 1_000_000}, s3)
    assert (output["source"], output["count"], output["items_format"]) == ("s3", 1_000_000, "JSON")
    assert array_of(s3, output["items_key"]) == list(range(1_000_000))


def test_upload_stream_single_put_and_multipart(s3: Any) -> None:
    assert upload_stream(s3, BUCKET, "small", [b"ab", b"c"], part_bytes=10) == 3
    assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == b"abc"
    data = bytes(range(256)) * 50_000  # 12.8 MB in uneven chunks
    chunks = [data[i : i + 777_777] for i in range(0, len(data), 777_777)]
    assert upload_stream(s3, BUCKET, "large", chunks, part_bytes=5 * 1024 * 1024) == len(data)
    assert s3.get_object(Bucket=BUCKET, Key="large")["Body"].read() == data


def test_a_failed_multipart_upload_is_aborted(s3: Any) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * (5 * 1024 * 1024)
        yield b"y"
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match="generator failed"):
        upload_stream(s3, BUCKET, "broken", broken(), part_bytes=5 * 1024 * 1024)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


# ---------------------------------------------------------------------------------------------------
# lists the user uploaded


@pytest.mark.parametrize(
    ("key", "body", "item_format", "count"),
    [
        ("lists/a.jsonl", b'{"x": 1}\n"two"\n\n3\n', "JSONL", 3),
        ("lists/b.csv", b'name,size\nalpha,1\n"be,ta",2\n\ngamma,3\n', "CSV", 3),
        ("lists/c.json", b'[{"x": 1}, "two", 3, [4]]', "JSON", 4),
        ("lists/empty.csv", b"name,size\n", "CSV", 0),
    ],
)
def test_user_uploaded_lists_pass_through_counted(
    s3: Any, key: str, body: bytes, item_format: str, count: int
) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    output = run({"items_s3": f"s3://{BUCKET}/{key}", "parameters": {"q": 2}}, s3)
    assert output == {
        "source": "s3",
        "items_bucket": BUCKET,
        "items_key": key,
        "items_format": item_format,
        "count": count,
        "parameters": {"q": 2},
    }


def test_user_list_in_another_bucket(s3: Any) -> None:
    s3.create_bucket(Bucket="user-data")
    s3.put_object(Bucket="user-data", Key="in/items.jsonl", Body=b"1\n2\n")
    output = run({"items_s3": "s3://user-data/in/items.jsonl"}, s3)
    assert (output["items_bucket"], output["count"]) == ("user-data", 2)


# ---------------------------------------------------------------------------------------------------
# bad inputs the start function finds (parse_execution_input's own messages: tests/test_contracts.py)


def test_bad_input_fails_before_anything_is_written(s3: Any) -> None:
    with pytest.raises(InvalidInput, match="size must be zero or more"):
        run({"size": -5}, s3)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


@pytest.mark.parametrize(
    "event",
    [
        {"size": True},
        {"size": "10"},
        {},
        {"size": 1, "items": []},
        {"items": 3},
        {"size": 1, "parameters": 1},
    ],
)
def test_every_contract_violation_is_invalid_input_from_the_handler(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        start(event, job_id=REQUEST_ID, bucket=None)


def test_a_list_too_large_for_the_payload_without_a_bucket() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"The items must go through S3 \(the item list takes \d+ bytes of JSON, more than the 131072 "
        r"that fit in the 256 KiB state payload beside the job's results\), but this start function has no "
        r"bucket \(environment variable BURSTMAP_BUCKET; BurstCompute sets it\): upload the list yourself",
    ):
        start({"size": 100_000}, job_id=REQUEST_ID, bucket=None)


def test_via_s3_without_a_bucket() -> None:
    with pytest.raises(InvalidInput, match=r"The items must go through S3 \(you asked for via_s3\), but"):
        start({"size": 1, "via_s3": True}, job_id=REQUEST_ID, bucket=None)


def test_items_s3_object_missing(s3: Any) -> None:
    with pytest.raises(
        InvalidInput,
        match=rf"items_s3 object s3://{BUCKET}/nope.jsonl does not exist: upload the list first, "
        r"or fix the URI\.",
    ):
        run({"items_s3": f"s3://{BUCKET}/nope.jsonl"}, s3)


def test_items_s3_bucket_missing(s3: Any) -> None:
    with pytest.raises(InvalidInput, match=r"items_s3 bucket 'no-such-bucket' does not exist: fix the URI\."):
        run({"items_s3": "s3://no-such-bucket/a.jsonl"}, s3)


def _denied(operation: str) -> Any:
    from botocore.exceptions import ClientError

    def denied(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    return denied


def test_items_s3_access_denied(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object is there (a listing shows it) but GetObject is refused: a real AccessDenied."""
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b"1\n")
    monkeypatch.setattr(s3, "get_object", _denied("GetObject"))
    with pytest.raises(
        InvalidInput, match=r"cannot be read by the start function \(AccessDenied\): put the list"
    ):
        run({"items_s3": f"s3://{BUCKET}/a.jsonl"}, s3)


def test_items_s3_missing_object_answered_access_denied_is_reported_missing(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers GetObject for a missing key with 403 to a caller without s3:ListBucket for it
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"); the start
    role may list its items prefix (a ListBucket grant conditioned on s3:prefix), so a listing with
    the key as prefix tells a missing list from a refused one. A refused listing keeps AccessDenied."""
    monkeypatch.setattr(s3, "get_object", _denied("GetObject"))
    with pytest.raises(InvalidInput, match=rf"items_s3 object s3://{BUCKET}/items/gone.jsonl does not exist"):
        run({"items_s3": f"s3://{BUCKET}/items/gone.jsonl"}, s3)
    s3.put_object(Bucket=BUCKET, Key="items/gone.jsonl.bak", Body=b"1\n")  # a longer key is not the key
    with pytest.raises(InvalidInput, match="does not exist"):
        run({"items_s3": f"s3://{BUCKET}/items/gone.jsonl"}, s3)
    monkeypatch.setattr(s3, "list_objects_v2", _denied("ListObjectsV2"))
    with pytest.raises(InvalidInput, match=r"cannot be read by the start function \(AccessDenied\)"):
        run({"items_s3": f"s3://{BUCKET}/items/gone.jsonl"}, s3)


@pytest.mark.parametrize(
    ("key", "body", "detail"),
    [
        ("bad.jsonl", b'1\n{"a": \n', r"line 2 is not valid JSON"),
        ("bad.json", b'{"not": "an array"}', r"is not a JSON array"),
        ("bad.csv", b"\xff\xfe,\n", r"utf-8"),
    ],
)
def test_items_s3_with_unreadable_content(s3: Any, key: str, body: bytes, detail: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    with pytest.raises(
        InvalidInput, match=rf"items_s3 object s3://{BUCKET}/{key} is not a valid .* item list: .*{detail}"
    ):
        run({"items_s3": f"s3://{BUCKET}/{key}"}, s3)
