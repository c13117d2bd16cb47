"""ItemReader (burstmap.local.dmap.item_reader): CSV, JSON, JSONL and listed S3 objects, MaxItems, and
AWS's errors for each; S3 is moto's in-process mock."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from map_support import BUCKET, distributed, reader, run, services

from burstmap.local.dmap import item_reader, item_text

CSV_BODY = (
    "Col1,Col2,Col3\nValue1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"
)


def test_csv_first_row_header_pads_short_rows_and_drops_extra_fields(s3):
    s3.put_object(Bucket=BUCKET, Key="file.csv", Body=CSV_BODY)
    state = distributed(MaxConcurrency=1, ItemReader=reader("file.csv", "CSV", CSVHeaderLocation="FIRST_ROW"))
    # Expected output recorded on AWS (conformance case item_reader_csv_header_first_row).
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"Col1": "Value1", "Col2": "Value2", "Col3": "Value3"},
        {"Col1": "Value4", "Col2": "Value5", "Col3": "Value6"},
        {"Col1": "", "Col2": "", "Col3": ""},
        {"Col1": "true", "Col2": "1", "Col3": "'HelloWorld'"},
        {"Col1": "Null", "Col2": "None", "Col3": ""},
        {"Col1": "   ", "Col2": "", "Col3": ""},
    ]


def test_csv_given_headers_and_quoted_fields(s3):
    s3.put_object(Bucket=BUCKET, Key="g.csv", Body='a,"b,1\nnext",c\n1,2,3\n')
    state = distributed(ItemReader=reader("g.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["H1", "H2"]))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"H1": "a", "H2": "b,1\nnext"},
        {"H1": "1", "H2": "2"},
    ]


def test_csv_duplicate_given_headers_fail_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="g.csv", Body="1,2\n")
    state = distributed(ItemReader=reader("g.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["H1", "H1"]))
    with pytest.raises(Exception) as failure:
        run(state, {"Bucket": BUCKET}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (
        "States.ItemReaderFailed",
        "CSV headers cannot contain duplicates.",
    )


def test_json_reader_and_items_path_is_ignored_with_an_item_reader(s3):
    s3.put_object(Bucket=BUCKET, Key="file.json", Body=json.dumps([["from-bucket-item-0"], {"k": 1}]))
    state = distributed(ItemsPath="$.from_previous", ItemReader=reader("file.json", "JSON"))
    assert run(state, {"Bucket": BUCKET, "from_previous": ["x"]}, svc=services(s3)) == [
        ["from-bucket-item-0"],
        {"k": 1},
    ]


def test_json_reader_over_an_object_fails_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="file.json", Body='{"Hello": "world"}')
    with pytest.raises(Exception) as failure:
        run(distributed(ItemReader=reader("file.json", "JSON")), {"Bucket": BUCKET}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (
        "States.ItemReaderFailed",
        "Attempting to map over non-iterable node.",
    )


def test_jsonl_reader_skips_blank_lines(s3):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body='{"a": 1}\n\n[2]\n"three"\n')
    state = distributed(ItemReader=reader("f.jsonl", "JSONL"))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [{"a": 1}, [2], "three"]


@pytest.mark.parametrize(
    ("max_items", "expected"), [(2, [0, 1]), (0, [0, 1, 2, 3]), (100_000_001, [0, 1, 2, 3])]
)
def test_max_items_path_caps_the_items_and_zero_means_no_limit(s3, max_items, expected):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n1\n2\n3\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItemsPath="$.MaxItems"))
    assert run(state, {"Bucket": BUCKET, "MaxItems": max_items}, svc=services(s3)) == expected


def test_max_items_literal(s3):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n1\n2\n3\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItems=3))
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [0, 1, 2]


@pytest.mark.parametrize(
    ("value", "error", "cause"),
    [
        (-1, "States.ItemReaderFailed", "field MaxItems must be positive"),
        (
            1.5,
            "States.Runtime",
            'The MaxItemsPath field refers to value "1.5" which is not a valid integer: $.MaxItems',
        ),
    ],
)
def test_bad_max_items_path_values_fail_with_aws_error_texts(s3, value, error, cause):
    s3.put_object(Bucket=BUCKET, Key="f.jsonl", Body="0\n")
    state = distributed(ItemReader=reader("f.jsonl", "JSONL", MaxItemsPath="$.MaxItems"))
    with pytest.raises(Exception) as failure:
        run(state, {"Bucket": BUCKET, "MaxItems": value}, svc=services(s3))
    assert (failure.value.error, failure.value.cause) == (error, cause)


def test_list_objects_v2_items_are_shaped_like_aws(s3):
    s3.put_object(Bucket=BUCKET, Key="data/a.txt", Body=b"12345")
    s3.put_object(Bucket=BUCKET, Key="data/b.txt", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="other/c.txt", Body=b"1")
    state = distributed(
        ItemReader={
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.prefix"},
        }
    )
    items = run(state, {"prefix": "data/"}, svc=services(s3))
    assert [item["Key"] for item in items] == ["data/a.txt", "data/b.txt"]
    first = items[0]
    assert list(first) == ["Etag", "Key", "LastModified", "Size", "StorageClass"]
    assert first["Size"] == 5 and first["StorageClass"] == "STANDARD"
    assert first["Etag"].startswith('"') and isinstance(first["LastModified"], int)
    assert abs(first["LastModified"] - time.time()) < 3600


def test_a_compact_json_array_of_integers_is_checked_not_parsed():
    """The start Lambda's size-job list ("[0,1,...]") reaches the batcher unparsed; any other
    array is parsed as before, with the same errors."""

    def read(data: bytes) -> list[Any]:
        return list(item_reader._json_items(io.BytesIO(data), unparsed_integers=True))

    (chunk,) = read(b"[0,1,-2,30]\n")
    assert isinstance(chunk, item_text.UnparsedIntegers) and chunk.parsed() == [0, 1, -2, 30]
    (chunk,) = read(b"[1, 2]")
    assert chunk.json_text == "1,2"
    assert read(b"[1 ,2]") == [[1, 2]]
    with pytest.raises(Exception, match="not valid JSON"):
        read(b"[1, 2 3]")  # "2 3" must not become 23
    assert read(b'[1,"a",null]') == [[1, "a", None]]
    assert read(b"[]") == []
    with pytest.raises(Exception, match="not valid JSON"):
        read(b"[01,2]")
    with pytest.raises(Exception, match="non-iterable"):
        read(b"{}")


CONTEXT_PAGE = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"


@pytest.mark.parametrize(
    ("key", "input_type", "body"),
    [
        ("in/items.json", "JSON", "[1, 2, 3]"),
        ("in/items.jsonl", "JSONL", "1\n2\n3\n"),
        ("in/items.csv", "CSV", "v\n1\n2\n3\n"),
    ],
)
def test_map_item_source_is_the_object_uri_for_every_object_read(s3, key, input_type, body):
    """Guide, "Context object data for Map states" (input-output-contextobject.html): "For all the
    other input types, the value will be the Amazon S3 URI" of the object, the same for every item
    (no line number); `$$.Map.Item.Source` in an ItemSelector reads it, also through the
    column-wise fast path and with MaxItems."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    config = {"CSVHeaderLocation": "FIRST_ROW"} if input_type == "CSV" else {}
    state = distributed(
        ItemReader=reader(key, input_type, MaxItems=2, **config),
        ItemSelector={"source.$": "$$.Map.Item.Source", "index.$": "$$.Map.Item.Index"},
    )
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"source": f"s3://{BUCKET}/{key}", "index": 0},
        {"source": f"s3://{BUCKET}/{key}", "index": 1},
    ]


def test_map_item_source_is_the_bucket_uri_for_a_listing(s3):
    """input-output-contextobject.html: "For Amazon S3 LIST_OBJECTS_V2 with Transformation=NONE, the
    value will show the S3 URI for the bucket"."""
    for key in ("p/a.txt", "p/b.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body="x")
    state = distributed(
        ItemReader={
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket.$": "$.Bucket", "Prefix": "p/"},
        },
        ItemSelector={"source.$": "$$.Map.Item.Source", "key.$": "$$.Map.Item.Value.Key"},
    )
    assert run(state, {"Bucket": BUCKET}, svc=services(s3)) == [
        {"source": f"s3://{BUCKET}", "key": "p/a.txt"},
        {"source": f"s3://{BUCKET}", "key": "p/b.txt"},
    ]


def test_map_item_source_is_state_data_for_items_from_the_input():
    """input-output-contextobject.html: "For state input, the value will be : STATE_DATA"."""
    state = distributed(
        ItemsPath="$.xs", ItemSelector={"s.$": "$$.Map.Item.Source", "v.$": "$$.Map.Item.Value"}
    )
    assert run(state, {"xs": ["a", "b"]}) == [{"s": "STATE_DATA", "v": "a"}, {"s": "STATE_DATA", "v": "b"}]


def test_zstd_compressed_objects_are_refused_not_read_as_text(s3):
    """Guide, "ItemReader (Map)"
    (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html): "Input files
    support the following external compression types: GZIP, ZSTD" (myObject.csv.zstd). The engine
    reads .gz; a ZSTD object is refused, when the definition is loaded or when a path names it."""
    from burstmap.local.core.errors import UnsupportedFeature

    with pytest.raises(UnsupportedFeature, match="not supported locally: ZSTD-compressed"):
        run(distributed(ItemReader=reader("items.jsonl.zstd", "JSONL")), {"Bucket": BUCKET})
    s3.put_object(Bucket=BUCKET, Key="items.jsonl.zst", Body=b"\x28\xb5\x2f\xfd")
    by_path = reader("unused", "JSONL")
    by_path["Parameters"] = {"Bucket.$": "$.Bucket", "Key.$": "$.Key"}
    with pytest.raises(UnsupportedFeature, match="'items.jsonl.zst' in state 'MapState'"):
        run(distributed(ItemReader=by_path), {"Bucket": BUCKET, "Key": "items.jsonl.zst"}, svc=services(s3))
