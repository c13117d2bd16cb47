"""Items as text: JSONL blocks parsed at once, and integer items checked instead of parsed.

The per-item cost of a large ItemReader stays in C: a JSONL block is split into lines and parsed by
the json module's scanner in one `map` call, with a line-by-line fallback (exact messages and line
numbers) for any block that is not one plain JSON value per line. When the map only needs the
items' text (each batch sent whole as a Lambda payload), a block of canonical integer lines is
checked and not parsed at all (`UnparsedIntegers`); parsed integer blocks keep their text
(`BoundedChunk.json_text`), so the batcher cuts payloads from it instead of encoding them again.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterator
from itertools import repeat
from operator import itemgetter
from typing import Any

from burstmap.local.core.errors import ITEM_READER_FAILED, StatesError

JSONL_BLOCK_CHARS = 64 * 1024
"""Characters of JSONL text parsed at once (cut at a line end)."""

_SCAN_JSON = json.JSONDecoder().scan_once
"""The json module's (C) scanner, what `json.loads` calls after skipping leading whitespace."""
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def item_reader_failed(cause: str) -> StatesError:
    return StatesError(ITEM_READER_FAILED, cause)


class BoundedChunk(list):  # type: ignore[type-arg] - items of any JSON type
    """A chunk of items that knows an upper bound on the sum of its items' compact JSON sizes
    (`json_bytes_bound`, bytes), so the batcher can skip measuring batches that surely fit.

    `json_text`, when set, is the items' compact JSON joined by commas, exactly what `to_json`
    writes between a list's brackets, and each comma in it separates two items (the items are
    numbers or null): the batcher cuts a batch's payload from it instead of encoding the items
    again."""

    json_bytes_bound: int = 0
    json_text: str | None = None


class UnparsedIntegers:
    """Items read but not parsed: `count` JSON integers whose compact text, joined by commas, is
    `json_text`. The item reader hands these out, after checking every line is a canonical JSON
    integer, when all the map needs is the items' text (each batch sent whole as a Lambda payload,
    which the function's runtime parses anyway); `parsed()` gives the items themselves."""

    __slots__ = ("json_text", "count")

    def __init__(self, json_text: str, count: int) -> None:
        self.json_text = json_text
        self.count = count

    def __len__(self) -> int:
        return self.count

    def parsed(self) -> BoundedChunk:
        chunk = BoundedChunk(json.loads("[" + self.json_text + "]"))
        chunk.json_bytes_bound = len(self.json_text) - (self.count - 1)  # exact: the text less its commas
        chunk.json_text = self.json_text
        return chunk


def item_separator_after(text: str, position: int, count: int, width: float) -> int:
    """In a `BoundedChunk.json_text`, the index of the comma ending the `count`-th item from
    `position` (where an item starts), or `len(text)` when that item is the last.

    Commas are counted in C over a guess of where the item ends (`width`: the average characters
    an item takes with its comma), moving on or narrowing the guess, then stepped back over the
    few commas past the one wanted: a few calls per batch instead of splitting the text."""
    need, start, end_of_text = count, position, len(text)
    while True:
        guess = min(end_of_text, start + max(1, int(need * width)))
        found = text.count(",", start, guess)
        if found < need:
            if guess == end_of_text:
                if found != need - 1:
                    raise ValueError(f"the text holds {count - need + found + 1} items, not {count}")
                return end_of_text
            start, need = guess, need - found
        elif found - need < 16:
            for _ in range(found - need + 1):
                guess = text.rfind(",", start, guess)
            return guess
        else:
            width = (guess - start) / found  # too far: a narrower guess, still past `start`


def jsonl_chunks(
    text: io.TextIOBase, where: str, *, unparsed_integers: bool = False
) -> Iterator[list[Any] | UnparsedIntegers]:
    """JSONL blocks cut at line ends, each parsed at once; line numbers count lines as iterating
    the text does (universal newlines: \\n, \\r\\n and a lone \\r end a line). With
    `unparsed_integers`, a block of canonical integer lines is checked only (`UnparsedIntegers`)."""
    lines_before = 0
    carry: list[str] = []
    while True:
        block = text.read(JSONL_BLOCK_CHARS)
        if not block:
            break
        cut = block.rfind("\n") + 1
        if cut == 0:
            carry.append(block)
            continue
        whole = "".join(carry) + block[:cut] if carry else block[:cut]
        carry = [block[cut:]] if cut < len(block) else []
        items, error = parse_jsonl_block(whole, lines_before, where, unparsed_integers)
        if items:
            yield items
        if error is not None:
            raise error
        lines_before += _line_count(whole)
    rest = "".join(carry)
    if rest:
        items, error = parse_jsonl_block(rest, lines_before, where, unparsed_integers)
        if items:
            yield items
        if error is not None:
            raise error


def _line_count(block: str) -> int:
    """Lines in a block that ends with a line break, counted with universal newlines."""
    if "\r" not in block:
        return block.count("\n")
    return block.count("\n") + block.count("\r") - block.count("\r\n")


def parse_jsonl_block(
    block: str, lines_before: int, where: str, unparsed_integers: bool = False
) -> tuple[list[Any] | UnparsedIntegers, Exception | None]:
    """The items of a block of whole lines, and the error that stops it (after the items before it).

    Fast path: every line is one JSON value with no surrounding blank (a `\\r\\n` ending aside), so
    `scan_once(line, 0)` - what `json.loads` does - returns it and stops at the line's end. Anything
    else (blank lines, leading spaces, a lone \\r, a bad line) goes line by line as before.
    """
    text = block
    carriage_returns = block.count("\r")
    if carriage_returns:
        if carriage_returns != block.count("\r\n"):
            return _parse_jsonl_lines(block, lines_before, where)
        text = block.replace("\r\n", "\n")  # \r is JSON whitespace: no value changes
    if unparsed_integers:
        body = text[:-1] if text.endswith("\n") else text
        if canonical_integer_lines(body):
            return UnparsedIntegers(body.replace("\n", ","), body.count("\n") + 1), None
    if "[" not in text and "{" not in text:
        scalars = _scalar_lines(text[:-1] if text.endswith("\n") else text)
        if scalars is not None:
            return scalars, None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        # A line the scanner cannot start raises StopIteration, which ends the map early.
        scanned = list(map(_SCAN_JSON, lines, repeat(0)))
    except ValueError:
        scanned = []
    if len(scanned) == len(lines) and list(map(_SECOND, scanned)) == list(map(len, lines)):
        return list(map(_FIRST, scanned)), None
    return _parse_jsonl_lines(block, lines_before, where)


def _scalar_lines(body: str) -> list[Any] | None:
    """Lines of scalars (no final line break), parsed at once, or None when they are not exactly
    one JSON scalar each.

    One parse of the lines joined by ",\\n": a string cannot hold a raw line break, so each value
    lies within a line; with no empty line and as many values as lines, each line holds exactly
    one. With no string at all, "," alone keeps them apart."""
    joined = body.replace("\n", ",\n" if '"' in body else ",")
    try:
        values = json.loads("[" + joined + "]")
    except ValueError:
        return None
    if len(values) != body.count("\n") + 1:
        return None
    if "." in body or "e" in body or "E" in body or '"' in body:
        return values
    # Integers and null only (ASCII): each value's JSON text is at most its line's.
    chunk = BoundedChunk(values)
    chunk.json_bytes_bound = len(body)
    if " " not in body and "\t" not in body and "-0" not in body:
        # No blank around a value and no -0: each line is its value's compact JSON.
        chunk.json_text = joined
    return chunk


def canonical_integer_lines(body: str) -> bool:
    """Whether every line of `body` (no final line break) is an integer as compact JSON writes it."""
    return body.isascii() and canonical_integers(body.encode("ascii"), b"\n")


def canonical_integers(data: bytes, separator: bytes) -> bool:
    """Whether `data` is integers as compact JSON writes them, one between each `separator`: an
    optional minus, then digits with no leading zero (no -0), nothing else, none empty. Checked
    with C-speed byte operations, about a third of the cost of parsing; a False may be wrong
    (several "0" in a row), as it only costs a parse.

    An integer past Python's digit limit (4,300 digits) passes, and reaches the function, whose
    runtime cannot parse it either."""
    if not data or data.translate(None, b"0123456789-" + separator):  # any other character
        return False
    if data.startswith(separator) or data.endswith(separator) or separator * 2 in data:  # an empty one
        return False
    # One starting with 0 is exactly "0" (each separator-0-separator found is one such; overlapping
    # ones are undercounted, which can only refuse).
    zero, lone_zero = separator + b"0", separator + b"0" + separator
    if data.startswith(b"0") and len(data) > 1 and data[1:2] != separator:
        return False
    if zero in data and data.count(zero) != data.count(lone_zero) + data.endswith(zero):
        return False
    # A minus only starts one, and a digit other than 0 follows it.
    return b"-" not in data or (
        data.count(b"-") == data.count(separator + b"-") + data.startswith(b"-")
        and b"-0" not in data
        and b"-" + separator not in data
        and not data.endswith(b"-")
    )


def _parse_jsonl_lines(block: str, lines_before: int, where: str) -> tuple[list[Any], Exception | None]:
    """Line by line, as the lines of the text iterate: blank lines skipped, the first bad line named."""
    items: list[Any] = []
    for line_number, line in enumerate(io.StringIO(block, newline=""), start=lines_before + 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            error = item_reader_failed(f"{where} line {line_number} is not valid JSON: {exc}")
            error.__cause__ = exc
            return items, error
    return items, None


class ItemTexts:
    """The compact JSON text of the items read so far, for chunks that carry it
    (`BoundedChunk.json_text`), so a batch's payload is cut from the reader's text. Batches take
    items in order: each chunk keeps where its next item starts, so a cut costs a few C calls."""

    def __init__(self) -> None:
        # [first item index, end item index, text or None, next item's index, its position in text]
        self.chunks: deque[list[Any]] = deque()

    def add(self, first_index: int, chunk: list[Any]) -> None:
        self.chunks.append(
            [first_index, first_index + len(chunk), getattr(chunk, "json_text", None), first_index, 0]
        )

    def clear(self) -> None:
        self.chunks.clear()

    def cut(self, first_index: int, count: int) -> str | None:
        """The comma-joined text of items [first_index, first_index + count), or None when a chunk
        they come from has no text (the batch is then encoded as usual)."""
        chunks = self.chunks
        while chunks and chunks[0][1] <= first_index:
            chunks.popleft()
        parts: list[str] | None = []
        end_index = first_index + count
        index = first_index
        for chunk in chunks:
            start, end, text, next_index, position = chunk
            if index >= end_index:
                break
            take = min(end, end_index) - index
            if text is None:
                parts = None  # every chunk still moves on, so the next batches find their place
            else:
                width = len(text) / (end - start)
                if next_index != index:  # not where the last cut stopped: find the item's start
                    position = item_separator_after(text, 0, index - start, width) + 1 if index > start else 0
                stop = len(text) if index + take == end else item_separator_after(text, position, take, width)
                if parts is not None:
                    parts.append(text[position:stop])
                chunk[3], chunk[4] = index + take, stop + 1
            index += take
        if parts is None or index != end_index:
            return None
        return parts[0] if len(parts) == 1 else ",".join(parts)


class UnparsedQueue:
    """Items not parsed yet (`UnparsedIntegers` chunks, in order), taken from the front as text."""

    def __init__(self) -> None:
        self.chunks: deque[UnparsedIntegers] = deque()
        self.count = 0
        self.front_taken = 0  # items already taken from the front chunk
        self.position = 0  # where the front chunk's next item starts in its text

    def __len__(self) -> int:
        return self.count

    def append(self, chunk: UnparsedIntegers) -> None:
        self.chunks.append(chunk)
        self.count += chunk.count

    def take(self, count: int, max_length: int) -> str | None:
        """The comma-joined text of the next `count` items, taken; None (nothing taken) when it
        is longer than `max_length` characters (ASCII: as many bytes)."""
        parts: list[str] = []
        length = -1  # no comma before the first part
        needed, taken, position = count, self.front_taken, self.position
        for chunk in self.chunks:
            text = chunk.json_text
            take = min(needed, chunk.count - taken)
            if take == chunk.count - taken:
                stop = len(text)
            else:
                stop = item_separator_after(text, position, take, len(text) / chunk.count)
            length += stop - position + 1
            if length > max_length:
                return None
            parts.append(text[position:stop])
            needed -= take
            if needed == 0:
                break
            taken = position = 0
        for _ in range(len(parts) - 1):
            self.chunks.popleft()
        if taken + take == self.chunks[0].count:
            self.chunks.popleft()
            self.front_taken = self.position = 0
        else:
            self.front_taken, self.position = taken + take, stop + 1
        self.count -= count
        return parts[0] if len(parts) == 1 else ",".join(parts)

    def take_all(self) -> UnparsedIntegers:
        """Every item left, taken, as one chunk."""
        parts = [chunk.json_text for chunk in self.chunks]
        parts[0] = parts[0][self.position :]
        rest = UnparsedIntegers(",".join(parts), self.count)
        self.chunks.clear()
        self.count = self.front_taken = self.position = 0
        return rest
