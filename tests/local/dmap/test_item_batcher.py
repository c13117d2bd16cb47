"""ItemBatcher (burstmap.local.dmap.item_batcher): batches by count and by bytes as AWS makes them, and
the whole-batch and text-cut fast paths against the greedy per-item batches."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from map_support import CONTEXT, distributed, run

from burstmap.local.core.json_text import to_json
from burstmap.local.dmap import item_batcher, item_text
from burstmap.local.dmap.item_batcher import BatcherSettings


def test_batches_by_item_count_like_the_aws_example():
    state = distributed(ItemBatcher={"MaxItemsPerBatch": 100})
    batches = run(state, list(range(1130)))
    assert [len(b["Items"]) for b in batches] == [100] * 11 + [30]
    assert batches[-1]["Items"][0] == 1100 and "BatchInput" not in batches[0]


def test_batch_item_count_from_a_path_accepts_an_integer_string():
    state = distributed(ItemBatcher={"MaxItemsPerBatchPath": "$.n"}, ItemsPath="$.items")
    assert run(state, {"n": "2", "items": [1, 2, 3]}) == [{"Items": [1, 2]}, {"Items": [3]}]


def test_batches_by_bytes_split_exactly_at_the_limit_with_batch_input():
    items = [{"k": "x" * (i % 7)} for i in range(200)]
    limit = 300
    state = distributed(
        ItemBatcher={"MaxInputBytesPerBatch": limit, "BatchInput": {"job.$": "$.job"}},
        ItemsPath="$.items",
        ItemSelector={"v.$": "$$.Map.Item.Value.k"},
    )
    batches = run(state, {"job": "j1", "items": items})

    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")).encode())

    flattened = [item for b in batches for item in b["Items"]]
    assert flattened == [{"v": item["k"]} for item in items]
    for position, batch in enumerate(batches):
        assert batch["BatchInput"] == {"job": "j1"}
        assert size(batch) <= limit
        if position + 1 < len(batches):  # the next item would not have fitted
            grown = {**batch, "Items": batch["Items"] + [batches[position + 1]["Items"][0]]}
            assert size(grown) > limit


def test_an_item_larger_than_the_byte_limit_alone_fails_with_a_clear_cause():
    state = distributed(ItemBatcher={"MaxInputBytesPerBatch": 20})
    with pytest.raises(Exception) as failure:
        run(state, ["short", "x" * 50])
    assert failure.value.error == "States.Runtime"
    assert "index 1" in failure.value.cause and "MaxInputBytesPerBatch (20)" in failure.value.cause


def _reference_batches(items: list[Any], max_items: int | None, limit: int, envelope: int) -> list[int]:
    """The greedy batcher item by item: batch lengths."""
    lengths: list[int] = []
    count, size = 0, envelope
    for item in items:
        item_bytes = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
        if count and ((max_items is not None and count >= max_items) or size + 1 + item_bytes > limit):
            lengths.append(count)
            count, size = 0, envelope
        size += item_bytes + (1 if count else 0)
        count += 1
    if count:
        lengths.append(count)
    return lengths


@pytest.mark.parametrize("max_items", [None, 1, 3, 50, 1000])
@pytest.mark.parametrize("limit", [60, 200, 262_144])
def test_whole_batch_sizing_gives_the_greedy_per_item_batches(max_items, limit):
    """Measured a whole batch at a time (and by item only past the byte limit), in chunks of any
    size, batches are exactly the item-by-item greedy ones."""
    import random

    rng = random.Random(limit * 7 + (max_items or 0))
    items = [rng.choice([1, "é" * rng.randint(0, 15), {"k": "v" * rng.randint(0, 20)}]) for _ in range(3000)]
    cuts = sorted(rng.sample(range(1, len(items)), 40))
    chunks = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]
    batcher: dict[str, Any] = {"MaxInputBytesPerBatch": limit}
    if max_items is not None:
        batcher["MaxItemsPerBatch"] = max_items
    settings = BatcherSettings.resolve(batcher, {}, CONTEXT)
    batches = list(item_batcher.batched("M", iter(chunks), settings))
    assert [batch.item_count for batch in batches] == _reference_batches(items, max_items, limit, 12)
    assert [item for batch in batches for item in batch.child_input["Items"]] == items
    assert [batch.first_index for batch in batches] == [
        sum(b.item_count for b in batches[:n]) for n in range(len(batches))
    ]
    # A batch measured whole keeps that encoding as its payload text, exactly the encoded input.
    for batch in batches:
        if batch.json_text is not None:
            assert batch.json_text == to_json(batch.child_input)
    if max_items is not None and limit == 262_144:
        assert all(batch.json_text is not None for batch in batches)


def test_integer_jsonl_chunks_carry_a_size_bound_the_batcher_trusts():
    """A block of integer lines knows its JSON size without encoding it; batches cut from such
    chunks are the greedy ones, and a bound over the limit still falls back to measuring."""
    text = "".join(f"{i}\n" for i in range(5000)) + "-0\n  7\n"
    chunks = list(item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k"))
    items = [item for chunk in chunks for item in chunk]
    assert items == [*range(5000), 0, 7]
    assert all(isinstance(chunk, item_text.BoundedChunk) for chunk in chunks[:-1])
    assert sum(chunk.json_bytes_bound for chunk in chunks if isinstance(chunk, item_text.BoundedChunk)) >= (
        sum(len(json.dumps(item)) for item in items[: sum(len(c) for c in chunks[:-1])])
    )
    for limit in (100, 5000, 262_144):
        settings = BatcherSettings.resolve(
            {"MaxItemsPerBatch": 700, "MaxInputBytesPerBatch": limit}, {}, CONTEXT
        )
        batches = list(item_batcher.batched("M", iter(chunks), settings))
        assert [batch.item_count for batch in batches] == _reference_batches(items, 700, limit, 12)
    assert not isinstance(
        item_text.parse_jsonl_block("1.5\n2\n", 0, "w")[0], item_text.BoundedChunk
    )  # a float's JSON text can be longer than its source ("1e5" is 100000.0)


@pytest.mark.parametrize("max_items", [1, 7, 700, None])
@pytest.mark.parametrize("limit", [100, 5000, 262_144])
def test_batches_cut_from_the_reader_text_are_exactly_the_encoded_batches(max_items, limit):
    """Batches built from integer JSONL blocks carry their input's text, cut from the reader's
    text: byte for byte what encoding the batch gives, across block boundaries, next to blocks
    that must be parsed (-0, blanks, floats, strings) and with BatchInput. With the integer blocks
    left unparsed by the reader, the batches are the same, item for item."""
    import random

    rng = random.Random(limit + (max_items or 0))
    lines = [rng.choice(["1", "-42", str(10 ** rng.randint(0, 25))]) for _ in range(30_000)]
    lines[rng.randrange(len(lines))] = "0"
    near = rng.randrange(len(lines) - 600)
    for odd in ("-0", " 5", "1.5", '"s"', "true", "[1]", "null"):  # each makes its block parsed
        lines.insert(near + rng.randrange(600), odd)
    text = "".join(line + "\n" for line in lines)
    batcher: dict[str, Any] = {"MaxInputBytesPerBatch": limit, "BatchInput": {"job": "é", "n": 3}}
    if max_items is not None:
        batcher["MaxItemsPerBatch"] = max_items
    settings = BatcherSettings.resolve(batcher, {}, CONTEXT)
    runs = {}
    for unparsed in (False, True):
        reader = item_text.jsonl_chunks(io.StringIO(text, newline=""), "s3://b/k", unparsed_integers=unparsed)
        chunks = list(reader)
        runs[unparsed] = (chunks, list(item_batcher.batched("M", iter(chunks), settings)))
    chunks, batches = runs[False]
    assert any(getattr(chunk, "json_text", None) for chunk in chunks)
    assert any(isinstance(chunk, item_text.UnparsedIntegers) for chunk in runs[True][0])
    items = [item for chunk in chunks for item in chunk]
    assert [item for batch in batches for item in batch.child_input["Items"]] == items
    has_text = [getattr(chunk, "json_text", None) is not None for chunk in chunks for _ in chunk]
    for batch in batches:
        span = has_text[batch.first_index : batch.first_index + batch.item_count]
        if all(span):  # cut from the reader's text (others may carry the encoding they were measured by)
            assert batch.json_text is not None
    if len(batches) > 10:  # most batches lie in blocks with text
        assert sum(batch.json_text is not None for batch in batches) > len(batches) // 3
    unparsed_batches = runs[True][1]
    assert [(b.sequence, b.first_index, b.item_count) for b in unparsed_batches] == [
        (b.sequence, b.first_index, b.item_count) for b in batches
    ]
    for batch, twin in zip(batches, unparsed_batches, strict=True):
        for each in (batch, twin):
            if each.json_text is not None:
                assert each.json_text == to_json(each.child_input)
        assert twin.child_input == batch.child_input
