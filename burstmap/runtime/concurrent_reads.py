"""Read several sources at once on a bounded thread pool, handing their records over in bounded memory.

A map run writes many result files; reading a few at a time overlaps S3 latency with decoding. Standard
library only: this module runs inside Lambda.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

DEFAULT_WORKERS = 4
"""Result files read at once: S3 latency overlaps with decoding; more threads only contend for the GIL."""
RECORDS_PER_HANDOVER = 256
"""Records a reading thread hands to the consumer at once (fewer queue operations than one by one)."""
MAX_PENDING_HANDOVERS = 8
"""Hand-overs waiting for the consumer: with the above, at most 2,048 records (+ a hand-over per thread)."""


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def read_concurrently(
    sources: list[Any], read: Callable[[Any], Iterable[Any]], *, workers: int = DEFAULT_WORKERS
) -> Iterator[Any]:
    """Everything ``read(source)`` yields for every source, ``workers`` sources at a time.

    Reading threads hand records over through a bounded queue, so at most about
    ``(MAX_PENDING_HANDOVERS + workers) * RECORDS_PER_HANDOVER`` records are in memory whatever the total.
    Order is kept within a source; sources interleave. Closing the iterator early stops the threads.
    """
    workers = max(1, min(workers, len(sources)))
    if workers == 1:
        for source in sources:
            yield from read(source)
        return
    handovers: queue.Queue[Any] = queue.Queue(maxsize=MAX_PENDING_HANDOVERS)
    stop = threading.Event()
    lock = threading.Lock()
    remaining = iter(sources)

    def hand_over(value: Any) -> bool:
        while not stop.is_set():
            try:
                handovers.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    source = next(remaining, None)
                if source is None:
                    break
                batch: list[Any] = []
                for record in read(source):
                    batch.append(record)
                    if len(batch) >= RECORDS_PER_HANDOVER:
                        if not hand_over(batch):
                            return
                        batch = []
                if batch and not hand_over(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            hand_over(_Failure(exc))
        finally:
            hand_over(_DONE)

    threads = [
        threading.Thread(target=work, name=f"burstmap-results-{n}", daemon=True) for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < workers:
            handover = handovers.get()
            if handover is _DONE:
                finished += 1
            elif isinstance(handover, _Failure):
                raise handover.error
            else:
                yield from handover
                del handover
    finally:
        stop.set()
        for thread in threads:
            thread.join()
