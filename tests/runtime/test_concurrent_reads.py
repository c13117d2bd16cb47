"""burstmap.runtime.concurrent_reads: sources read at once in bounded memory; errors and early closing
stop the threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from burstmap.runtime import concurrent_reads
from burstmap.runtime.concurrent_reads import read_concurrently
from burstmap.runtime.contracts import InvalidResultFile


def test_one_worker_keeps_the_order_of_the_sources() -> None:
    assert list(read_concurrently([1, 2, 3], lambda source: [source] * 2, workers=1)) == [1, 1, 2, 2, 3, 3]


def test_concurrent_reading_buffers_a_bounded_number_of_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers may run ahead of a slow consumer by at most the hand-over queue: never the whole job."""
    monkeypatch.setattr(concurrent_reads, "RECORDS_PER_HANDOVER", 10)
    monkeypatch.setattr(concurrent_reads, "MAX_PENDING_HANDOVERS", 3)
    produced = 0
    lock = threading.Lock()

    def read(source: int) -> Iterator[int]:
        nonlocal produced
        for n in range(2_000):
            with lock:
                produced += 1
            yield source * 10_000 + n

    consumed = 0
    max_ahead = 0
    for _ in read_concurrently(list(range(6)), read, workers=3):
        consumed += 1
        if consumed % 500 == 0:
            time.sleep(0.01)  # let the producers fill every buffer
        with lock:
            max_ahead = max(max_ahead, produced - consumed)
    assert consumed == 12_000
    # queue (3 hand-overs) + one being filled per thread + the one being consumed, of 10 records each
    assert max_ahead <= (3 + 3 + 1) * 10 + 3


def test_a_reading_error_reaches_the_consumer_and_stops_the_threads() -> None:
    def read(source: int) -> Iterator[int]:
        yield source
        if source == 2:
            raise InvalidResultFile("file 2 is broken")
        yield from range(100)

    before = threading.active_count()
    with pytest.raises(InvalidResultFile, match="file 2 is broken"):
        list(read_concurrently(list(range(5)), read, workers=3))
    assert threading.active_count() == before


def test_closing_early_stops_the_threads() -> None:
    def read(source: int) -> Iterator[int]:
        yield from range(100_000)

    before = threading.active_count()
    stream = read_concurrently(list(range(4)), read, workers=4)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before
