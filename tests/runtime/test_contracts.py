"""burstmap.runtime.contracts: the input checks (one test per message), sizes and exact big numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from burstmap.runtime.contracts import (
    MAX_SIZE,
    PARAMETERS_MAX_BYTES,
    InvalidInput,
    S3Location,
    check_state_payload,
    decimal_to_int,
    int_to_decimal,
    json_size,
    parse_execution_input,
    parse_items_s3,
    range_json_size,
    to_wire,
)

# ---------------------------------------------------------------------------------------------------
# valid inputs


def test_size_input() -> None:
    request = parse_execution_input({"size": 1024})
    assert (request.size, request.items, request.items_s3, request.parameters, request.via_s3) == (
        1024,
        None,
        None,
        {},
        False,
    )


def test_items_input_with_parameters_and_via_s3() -> None:
    request = parse_execution_input({"items": [1, "a", {"b": 2}], "parameters": {"p": 1}, "via_s3": True})
    assert request.items == [1, "a", {"b": 2}]
    assert request.parameters == {"p": 1}
    assert request.via_s3 is True


@pytest.mark.parametrize(
    ("uri", "item_format"),
    [
        ("s3://my-bucket/a/b.jsonl", "JSONL"),
        ("s3://my-bucket/x.CSV", "CSV"),
        ("s3://my.bucket/x.json", "JSON"),
    ],
)
def test_items_s3_input(uri: str, item_format: str) -> None:
    request = parse_execution_input({"items_s3": uri})
    assert request.items_s3 == S3Location(uri[5:].split("/", 1)[0], uri[5:].split("/", 1)[1])
    assert request.items_format == item_format
    assert request.items_s3.uri == uri


def test_size_zero_and_empty_items_are_valid_empty_jobs() -> None:
    assert parse_execution_input({"size": 0}).size == 0
    assert parse_execution_input({"items": []}).items == []


# ---------------------------------------------------------------------------------------------------
# one test per message


def test_input_not_an_object() -> None:
    with pytest.raises(
        InvalidInput,
        match=r'The execution input must be a JSON object such as \{"size": 1024\}, '
        r"got an array\.",
    ):
        parse_execution_input([1, 2])


def test_unknown_keys() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"Unknown key\(s\) in the execution input: 'Size', 'n'\. "
        r"Use only size, items, items_s3, parameters, via_s3; job settings",
    ):
        parse_execution_input({"Size": 3, "n": 1, "items": []})


def test_no_item_source() -> None:
    with pytest.raises(InvalidInput, match=r"names no items: give one of \{\"size\": N\}"):
        parse_execution_input({"parameters": {}})


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({"size": 3, "items": [1]}, "size and items"),
        ({"items": [1], "items_s3": "s3://bb/k.jsonl"}, "items and items_s3"),
        ({"size": 1, "items": [], "items_s3": "s3://bb/k.jsonl"}, "size and items and items_s3"),
    ],
)
def test_more_than_one_item_source(event: dict[str, Any], names: str) -> None:
    with pytest.raises(InvalidInput, match=f"gives {names}: give only one of size, items or items_s3"):
        parse_execution_input(event)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ("10", '"10" \\(a string\\)'),
        (True, "true \\(a boolean\\)"),
        (2.5, "2.5 \\(a number with a fraction\\)"),
        (10.0, "10.0 \\(a number written as a float\\)"),
        (None, "null \\(null\\)"),
    ],
)
def test_size_not_an_integer(size: Any, shown: str) -> None:
    with pytest.raises(
        InvalidInput,
        match=rf'size must be a whole number of items, like \{{"size": 1024\}}, '
        rf"got {shown}\.",
    ):
        parse_execution_input({"size": size})


def test_size_negative() -> None:
    with pytest.raises(InvalidInput, match=r"size must be zero or more, got -1\."):
        parse_execution_input({"size": -1})


def test_size_above_the_distributed_map_limit() -> None:
    with pytest.raises(
        InvalidInput, match=rf"size must be at most {MAX_SIZE} .*got {MAX_SIZE + 1}: split the job"
    ):
        parse_execution_input({"size": MAX_SIZE + 1})


@pytest.mark.parametrize(("items", "kind"), [({"a": 1}, "an object"), ("0,1", "a string"), (5, "an integer")])
def test_items_not_a_list(items: Any, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"items must be a JSON array of items, got {kind}"):
        parse_execution_input({"items": items})


@pytest.mark.parametrize(("parameters", "kind"), [([1], "an array"), ("x", "a string"), (None, "null")])
def test_parameters_not_an_object(parameters: Any, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"parameters must be a JSON object .*got {kind}: wrap the value"):
        parse_execution_input({"size": 1, "parameters": parameters})


def test_parameters_too_large() -> None:
    parameters = {"blob": "x" * PARAMETERS_MAX_BYTES}
    with pytest.raises(
        InvalidInput,
        match=rf"parameters take {json_size(parameters)} bytes of JSON, more than "
        rf"{PARAMETERS_MAX_BYTES} .*put large data in S3",
    ):
        parse_execution_input({"size": 1, "parameters": parameters})


def test_via_s3_not_a_boolean() -> None:
    with pytest.raises(InvalidInput, match=r'via_s3 must be true or false, got "yes"\.'):
        parse_execution_input({"size": 1, "via_s3": "yes"})


@pytest.mark.parametrize("uri", ["my-bucket/k.jsonl", 42, "https://my-bucket.s3.amazonaws.com/k.jsonl"])
def test_items_s3_not_an_s3_uri(uri: Any) -> None:
    with pytest.raises(
        InvalidInput, match=r'items_s3 must be an S3 URI like "s3://my-bucket/lists/items.jsonl"'
    ):
        parse_items_s3(uri)


@pytest.mark.parametrize("uri", ["s3://my-bucket", "s3://my-bucket/", "s3://B_ad/k.jsonl", "s3://bk/dir/"])
def test_items_s3_without_bucket_or_key(uri: str) -> None:
    with pytest.raises(InvalidInput, match="items_s3 must name a bucket and an object key"):
        parse_items_s3(uri)


def test_items_s3_with_an_unreadable_extension() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"items_s3 must end with \.jsonl .*, \.csv .* or \.json .*"
        r"got 's3://my-bucket/items.parquet': rename the object or convert it",
    ):
        parse_execution_input({"items_s3": "s3://my-bucket/items.parquet"})


def test_state_payload_limit() -> None:
    check_state_payload({"items": list(range(1000))}, "The start output")
    with pytest.raises(
        InvalidInput,
        match=r"The start output takes \d+ bytes of JSON, more than the 262144-byte "
        r"state payload limit: pass the items as an S3 list",
    ):
        check_state_payload({"items": ["x" * 1000] * 300}, "The start output")


# ---------------------------------------------------------------------------------------------------
# sizes and numbers


@pytest.mark.parametrize("count", [0, 1, 2, 9, 10, 11, 99, 100, 101, 12_345, 100_000])
def test_range_json_size_matches_the_serialised_list(count: int) -> None:
    assert range_json_size(count) == len(json.dumps(list(range(count))))


@pytest.mark.usefixtures("default_int_digits_limit")
@pytest.mark.parametrize("digits", [1, 19, 4000, 4301, 35_000, 100_001])
def test_decimal_round_trip_beyond_the_int_string_limit(digits: int) -> None:
    text = ("9876543210" * (digits // 10 + 1))[:digits]
    value = decimal_to_int(text)
    assert int_to_decimal(value) == text
    assert decimal_to_int("-" + text) == -value
    assert int_to_decimal(-value) == "-" + text
    assert value % 10**digits == value and value >= 10 ** (digits - 1)


@pytest.mark.usefixtures("default_int_digits_limit")
def test_int_to_decimal_pads_inner_zeros() -> None:
    value = 10**20_000 + 7
    text = int_to_decimal(value)
    assert len(text) == 20_001 and text.startswith("1000") and text.endswith("0007")


@pytest.mark.parametrize("text", ["", "12a", "1.5", "1e3", "--1", "0x10"])
def test_decimal_to_int_rejects_non_decimals(text: str) -> None:
    with pytest.raises(ValueError, match="not a decimal integer"):
        decimal_to_int(text)


@pytest.mark.usefixtures("default_int_digits_limit")
def test_to_wire_turns_unsafe_integers_into_decimal_strings() -> None:
    assert to_wire(2**53 - 1) == 2**53 - 1
    assert to_wire(2**53) == str(2**53)
    assert to_wire(-(2**60)) == str(-(2**60))
    assert to_wire(True) is True
    assert to_wire([2**60]) == [2**60]  # only top-level results are converted
    assert to_wire(10**5000) == "1" + "0" * 5000
