"""Items as text (burstmap.local.dmap.item_text): bulk JSONL parsing, integer text checked instead of
parsed, and cutting items out of text, each against the straightforward per-item algorithm it
replaces."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.dmap import item_text

_JSONL_PIECES = [
    "1", "-2", "3.5", "1e5", '"a"', '"b,c"', '"[x"', "true", "null", '{"a":1}', "[1,2]", "[1", "2]",
    "1,2", "", " ", "  7", "8  ", "\r", '"é"', '{"k":[1,{"z":2}]}', "}", '"a', 'b"', "1 2", "\x0c",
    "\ufeff1", "[[3", "4]]", "1],[2",
]  # fmt: skip


def _jsonl_line_by_line(text: str) -> tuple[list[Any], str | None]:
    """The reference: json.loads per line as the text iterates, blank lines skipped."""
    items: list[Any] = []
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                return items, f"line {number} is not valid JSON: {exc}"
    return items, None


def _jsonl_chunked(text: str) -> tuple[list[Any], str | None]:
    items: list[Any] = []
    try:
        for chunk in item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k"):
            items.extend(chunk)
    except StateRuntimeError:
        raise
    except Exception as exc:  # States.ItemReaderFailed
        return items, str(getattr(exc, "cause", exc)).split("s3://b/k ", 1)[1]
    return items, None


@pytest.mark.parametrize("block", [1, 5, 64, 64 * 1024])
def test_jsonl_blocks_parse_exactly_like_line_by_line_reading(monkeypatch, block):
    """Random JSONL texts made of valid, blank, bad and bracket-forging lines, CRLF and lone CR
    line ends: same items, and the same first bad line (number and message), for any block size."""
    import random

    monkeypatch.setattr(item_text, "JSONL_BLOCK_CHARS", block)
    rng = random.Random(block)
    for _ in range(3000):
        text = "".join(
            rng.choice(_JSONL_PIECES) + rng.choice(["\n", "\n", "\r\n", "\r"])
            for _ in range(rng.randint(0, 10))
        )
        if rng.random() < 0.5:
            text = text.rstrip("\n")
        expected, got = _jsonl_line_by_line(text), _jsonl_chunked(text)
        assert json.dumps(got[0]) == json.dumps(expected[0]), repr(text)
        assert got[1] == expected[1], repr(text)


def test_jsonl_scalar_lines_forging_brackets_are_not_merged():
    """'[1' + '2]' (or '1],[2') are one value across lines only in a bulk parse: refused by line."""
    for text, line in (("[1\n2]\n", 1), ("5\n1],[2\n[[3\n4]]\n", 2), ('"a\nb"\n', 1), ("1,2\n3\n", 1)):
        items, error = _jsonl_chunked(text)
        assert error is not None and error.startswith(f"line {line} "), (text, error)


@pytest.mark.parametrize("seed", range(6))
def test_item_separator_after_finds_the_comma_that_ends_the_nth_item(seed):
    """Counting commas from a guessed width lands on the same comma as splitting the text, for
    items of very uneven widths and any guess."""
    import random

    rng = random.Random(seed)
    values = [rng.choice([0, 7, -3, 10 ** rng.randint(0, 30), None]) for _ in range(rng.randint(1, 400))]
    texts = [json.dumps(value) for value in values]
    text = ",".join(texts)
    starts = [0]
    for piece in texts:
        starts.append(starts[-1] + len(piece) + 1)
    for _ in range(200):
        first = rng.randrange(len(values))
        count = rng.randint(1, len(values) - first)
        width = rng.choice([0.1, 1.0, len(text) / len(values), 50.0, 10_000.0])
        expected = starts[first + count] - 1  # the comma after the last item, or the text's end
        assert item_text.item_separator_after(text, starts[first], count, width) == expected
    with pytest.raises(ValueError):
        item_text.item_separator_after(text, 0, len(values) + 1, 2.0)


def test_unparsed_integer_blocks_are_exactly_the_canonical_ones():
    """The reader leaves a block unparsed only when every line is an integer as compact JSON
    writes it; anything else is parsed (and a bad line still fails with its line number)."""
    canonical = ["0", "7", "-7", "10", "-1234567890123456789012345", "0\n0", "5\n0", "0\n5"]
    other = [
        "00",
        "-0",
        "01",
        "-01",
        "+1",
        "1 ",
        " 1",
        "1\t",
        "",
        "1\n\n2",
        "-",
        "--1",
        "1-2",
        "5-",
        "1.0",
        "1e3",
        "null",
        '"1"',
        "[1]",
        "٣",
        "1\n-\n2",
        "1\n-0",
    ]
    for body in canonical:
        assert item_text.canonical_integer_lines(body), body
        chunk, error = item_text.parse_jsonl_block(body + "\n", 0, "w", unparsed_integers=True)
        assert error is None and isinstance(chunk, item_text.UnparsedIntegers)
        assert chunk.parsed() == json.loads("[" + body.replace("\n", ",") + "]")
        assert chunk.json_text == ",".join(json.dumps(v) for v in chunk.parsed())
    for body in other:
        assert not item_text.canonical_integer_lines(body), body
    chunk, error = item_text.parse_jsonl_block("1\n2\n0x\n", 0, "s3://b/k", unparsed_integers=True)
    assert chunk == [1, 2] and "line 3" in str(error)
