"""ItemBatcher: a distributed Map's items grouped into batches, one child execution each.

Each batch is as many items as fit both MaxItemsPerBatch and MaxInputBytesPerBatch, measured as
the whole child input {"Items": [...], "BatchInput": ...} in compact UTF-8 JSON (AWS developer
guide, "ItemBatcher (Map)"). Items the reader left as text (item_text.py) are batched as text:
a batch's input is cut from the reader's text and parsed only if something asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import StateRuntimeError, unsupported
from burstmap.local.core.json_text import json_size, to_json, utf8_length
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES
from burstmap.local.dmap.child import Batch
from burstmap.local.dmap.fields import check_exclusive, check_int, invalid
from burstmap.local.dmap.item_text import ItemTexts, UnparsedIntegers, UnparsedQueue
from burstmap.local.query.jsonpath import field_or_path
from burstmap.local.query.payload_template import resolve_template

_FIELDS = (
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
)


def validate_item_batcher(batcher: dict[str, Any], state_name: str) -> None:
    """Refuse at load time an ItemBatcher AWS would reject, or one with fields the engine does not run."""
    for key in batcher:
        if key not in _FIELDS:
            raise unsupported(f"ItemBatcher.{key}", state_name)
    for name in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        check_exclusive(batcher, name, "ItemBatcher.", state_name)
    if not any(key.startswith("Max") for key in batcher):
        raise invalid(
            "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path forms)", state_name
        )
    if "MaxItemsPerBatch" in batcher:
        check_int(batcher["MaxItemsPerBatch"], "ItemBatcher.MaxItemsPerBatch", state_name, 1)
    if "MaxInputBytesPerBatch" in batcher:
        check_int(
            batcher["MaxInputBytesPerBatch"],
            "ItemBatcher.MaxInputBytesPerBatch",
            state_name,
            1,
            STATE_PAYLOAD_LIMIT_BYTES,
        )


@dataclass(frozen=True)
class BatcherSettings:
    """An ItemBatcher's values for one map run (the `...Path` forms read from the state's input)."""

    max_items: int | None
    max_bytes: int
    batch_input: Any
    has_batch_input: bool

    @classmethod
    def resolve(cls, batcher: dict[str, Any], data: Any, context: dict[str, Any]) -> BatcherSettings:
        max_items = field_or_path(batcher, "MaxItemsPerBatch", data, context)
        if max_items is not None and max_items < 1:
            raise StateRuntimeError("MaxItemsPerBatch must be positive.")
        max_bytes = field_or_path(
            batcher, "MaxInputBytesPerBatch", data, context, default=STATE_PAYLOAD_LIMIT_BYTES
        )
        if not 1 <= max_bytes <= STATE_PAYLOAD_LIMIT_BYTES:
            raise StateRuntimeError("MaxInputBytesPerBatch must be between 1 and 262144.")
        has_batch_input = "BatchInput" in batcher
        batch_input = resolve_template(batcher["BatchInput"], data, context) if has_batch_input else None
        return cls(max_items, max_bytes, batch_input, has_batch_input)


def batched(
    state_name: str, chunks: Iterator[list[Any] | UnparsedIntegers], settings: BatcherSettings
) -> Iterator[Batch]:
    """Greedy batches of the items, in order (see `ItemBatcher`)."""
    return ItemBatcher(state_name, settings).batches(chunks)


class ItemBatcher:
    """Greedy batches: as many items as fit both MaxItemsPerBatch and MaxInputBytesPerBatch.

    With MaxItemsPerBatch, a batch of that many items is measured whole (one encoding, in C); items
    are measured one by one only for a batch that would pass the byte limit, or when bytes alone
    bound the batches. A batch is handed out once the item after it has been read (or the items
    are exhausted), as a reader error right after a batch stops it from running.

    Items the reader left unparsed (`UnparsedIntegers`) are batched as text: a batch's input is
    cut from the reader's text, measured by its length, and parsed only if something asks for it.
    Parsed items with text (`BoundedChunk.json_text`) give their batches text the same way.
    """

    def __init__(self, state_name: str, settings: BatcherSettings) -> None:
        self.state_name = state_name
        self.settings = settings
        self.limit = settings.max_bytes
        self.max_items = settings.max_items
        self.envelope = json_size({"Items": []})
        self.batch_input_json = ""
        if settings.has_batch_input:
            self.envelope += len(b',"BatchInput":') + json_size(settings.batch_input)
            self.batch_input_json = ',"BatchInput":' + to_json(settings.batch_input)
        self.texts = ItemTexts()
        self.measured: list[Any] = []  # [first index, count, items' JSON] of the last batch measured whole
        self.bounds: list[tuple[int, int | None]] = []  # (index after a pending chunk, its size bound)
        self.sequence = 0
        self.first_index = 0  # item index of the first item not yet in a batch
        self.pending: list[Any] = []  # parsed items, from first_index
        self.unparsed = UnparsedQueue()  # or items not parsed yet, from first_index (one of the two is empty)

    def batches(self, chunks: Iterator[list[Any] | UnparsedIntegers]) -> Iterator[Batch]:
        exhausted = False
        chunk_iterator = iter(chunks)
        while not exhausted:
            chunk = next(chunk_iterator, None)
            if chunk is None:
                exhausted = True
            else:
                self._add(chunk)
            yield from self._text_batches(exhausted)
            yield from self._parsed_batches(exhausted)

    # -- taking in chunks

    def _add(self, chunk: list[Any] | UnparsedIntegers) -> None:
        if isinstance(chunk, UnparsedIntegers) and self.max_items is None:
            self._add_parsed(chunk.parsed())  # bytes alone bound the batches: measured item by item
        elif isinstance(chunk, UnparsedIntegers):
            self._add_unparsed(chunk)
        else:
            if self.unparsed:
                self._add_parsed(self.unparsed.take_all().parsed())
            self._add_parsed(chunk)

    def _add_parsed(self, chunk: list[Any]) -> None:
        self.texts.add(self.first_index + len(self.pending), chunk)
        self.pending = self.pending + chunk if self.pending else chunk
        self.bounds.append((self.first_index + len(self.pending), getattr(chunk, "json_bytes_bound", None)))

    def _add_unparsed(self, chunk: UnparsedIntegers) -> None:
        if self.pending:  # the parsed items go back to text, or the new ones are parsed
            text = self.texts.cut(self.first_index, len(self.pending))
            if text is None:
                self._add_parsed(chunk.parsed())
                return
            self.unparsed.append(UnparsedIntegers(text, len(self.pending)))
            self.pending = []
            self.bounds.clear()
            self.texts.clear()
        self.unparsed.append(chunk)

    # -- handing out batches

    def _input_text(self, items_text: str) -> str:
        return '{"Items":[' + items_text + "]" + self.batch_input_json + "}"

    def _text_batches(self, exhausted: bool) -> Iterator[Batch]:
        """Whole batches cut from the unparsed items' text, while they fit MaxInputBytesPerBatch."""
        unparsed, max_items = self.unparsed, self.max_items
        while unparsed:
            count = len(unparsed) if max_items is None else min(max_items, len(unparsed))
            if not (exhausted or (max_items is not None and len(unparsed) > max_items)):
                break  # a batch is handed out once the item after it is read
            items_text = unparsed.take(count, self.limit - self.envelope)
            if items_text is None:  # past the byte limit: measured item by item, parsed
                self._add_parsed(unparsed.take_all().parsed())
                break
            yield Batch(self.sequence, self.first_index, count, json_text=self._input_text(items_text))
            self.sequence += 1
            self.first_index += count

    def _parsed_batches(self, exhausted: bool) -> Iterator[Batch]:
        pending = self.pending
        start = 0
        while start < len(pending):
            count = self._fitting(pending, start, self.first_index + start, exhausted)
            if count == 0:
                break
            yield self._parsed_batch(self.first_index + start, pending[start : start + count])
            self.sequence += 1
            start += count
        self.first_index += start
        self.pending = pending[start:]
        while self.bounds and self.bounds[0][0] <= self.first_index:
            del self.bounds[0]

    def _parsed_batch(self, first_index: int, items: list[Any]) -> Batch:
        value: dict[str, Any] = {"Items": items}
        if self.settings.has_batch_input:
            value["BatchInput"] = self.settings.batch_input
        text = self.texts.cut(first_index, len(items))
        if text is not None:
            return Batch(self.sequence, first_index, len(items), value, self._input_text(text))
        if self.measured[:2] == [first_index, len(items)]:
            json_text = '{"Items":' + self.measured[2] + self.batch_input_json + "}"
            return Batch(self.sequence, first_index, len(items), value, json_text)
        return Batch(self.sequence, first_index, len(items), value)

    # -- sizing

    def _bounded_size(self, first: int, count: int) -> int | None:
        """An upper bound on the batch's JSON size from its chunks' bounds (None if unknown)."""
        total = 0
        for end, bound in self.bounds:
            if end <= first:
                continue
            if bound is None:
                return None
            total += bound
            if end >= first + count:
                break
        return self.envelope + total + count - 1

    def _fitting(self, pending: list[Any], start: int, first_index: int, complete: bool) -> int:
        """How many items from `start` form the next batch; 0 when more items must be read first."""
        max_items = self.max_items
        if max_items is not None:
            candidate = pending[start : start + max_items]
            if self._fits_whole(candidate, first_index):
                # All fit: a batch if it is full with an item after it, or the last items.
                return len(candidate) if len(pending) - start > max_items or complete else 0
        end = start + max_items if max_items is not None else len(pending)
        counted = self._items_within_limit(pending, start, min(end, len(pending)), first_index)
        if counted is not None:
            return counted
        count = min(end, len(pending)) - start
        # Full by count with an item after it, or the last items: a batch; otherwise read on.
        return count if (count == max_items and len(pending) > start + count) or complete else 0

    def _fits_whole(self, candidate: list[Any], first_index: int) -> bool:
        """Whether the candidate batch fits the byte limit, by its chunks' bounds or one encoding."""
        estimate = self._bounded_size(first_index, len(candidate))
        if estimate is not None and estimate <= self.limit:
            return True
        items_json = to_json(candidate)
        if self.envelope - 2 + utf8_length(items_json) > self.limit:
            return False
        self.measured[:] = [first_index, len(candidate), items_json]  # the payload, not encoded twice
        return True

    def _items_within_limit(self, pending: list[Any], start: int, end: int, first_index: int) -> int | None:
        """Measured item by item: how many items from `start` fit before the one that passes the
        limit, or None when all up to `end` fit."""
        size = self.envelope
        for position in range(start, end):
            item_bytes = json_size(pending[position])
            if position == start:
                if size + item_bytes > self.limit:
                    raise StateRuntimeError(
                        f"The item at index {first_index} makes a batch of {size + item_bytes} bytes on "
                        f"its own, more than MaxInputBytesPerBatch ({self.limit}); reduce the item with "
                        "ItemSelector or raise the limit."
                    )
                size += item_bytes
            elif size + 1 + item_bytes > self.limit:
                return position - start
            else:
                size += 1 + item_bytes
        return None
