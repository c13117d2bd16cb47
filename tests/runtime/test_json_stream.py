"""burstmap.runtime.json_stream: JSON arrays and JSON Lines from byte chunks, whatever the boundaries,
in bounded memory, with every malformed file named."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from burstmap.runtime import json_stream
from burstmap.runtime.contracts import InvalidResultFile
from burstmap.runtime.json_stream import body_chunks, iter_json_array, iter_json_lines, iter_lines


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
# lines and bodies


def test_lines_keep_one_line_across_chunks_and_drop_carriage_returns() -> None:
    assert list(iter_lines(chunked(b"ab\r\ncd\n\nlast", 3))) == [b"ab", b"cd", b"", b"last"]
    assert list(iter_lines([b"", b"x\n"])) == [b"x"]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.reads, self.closed = data, [], False

    def read(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        self.reads.append(size)
        return chunk

    def close(self) -> None:
        self.closed = True


def test_body_chunks_reads_in_chunks_and_closes_the_body() -> None:
    body = _Body(b"abcdefg")
    assert list(body_chunks(body, 3)) == [b"abc", b"def", b"g"]
    assert body.reads == [3, 3, 3, 3] and body.closed
