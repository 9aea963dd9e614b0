"""Reading ahead in a thread: the next batches are read (and, for 12345 CSV, parsed by polars)
while the current one is prepared and written. polars, numpy and SQLite release the GIL in
their own work, so on two cores reading overlaps the rest; memory stays bounded (at most
``depth`` batches wait)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` as produced by a reader thread, at most ``depth`` ahead. An exception in
    the reader is raised here, at its place in the sequence. Closing this generator (a cancelled
    import leaving its loop) stops the reader and waits for it, then closes ``items``."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            put((_DONE, exc))

    t = threading.Thread(target=work, name="intake-reader", daemon=True)
    t.start()
    try:
        while True:
            x, exc = q.get()
            if x is _DONE:
                if exc is not None:
                    raise exc
                return
            yield x
    finally:
        stop.set()
        t.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
