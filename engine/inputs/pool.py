"""Decoding many files in a pool of worker threads, in order, a bounded number ahead.

Pillow releases the GIL while it decodes and resizes, so a few threads decode the next images
while the network runs on the current batch (the batch command line, gallery indexing).
Results come back in input order; at most ``ahead`` items are in flight, so memory stays
bounded for folders of any size.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Decoding threads: as many as CPU cores, at most 4 (the network uses the cores too)."""
    return max(1, min(4, os.cpu_count() or 1))


def map_ordered(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None,
                ahead: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` computed by worker threads, yielded in input order.

    Args:
        fn: the work per item (e.g. read and decode one file); it should catch the errors it
            expects and return them (an exception it raises is re-raised here, in order).
        items: the inputs.
        workers: threads (default :func:`default_workers`); 0 or 1 runs ``fn`` in this thread.
        ahead: most items submitted but not yet yielded (default 4 x workers).

    Yields:
        ``fn(item)`` for each item, in order.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers <= 1:
        yield from map(fn, items)
        return
    ahead = max(1, ahead or 4 * workers)
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque = deque()
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped early (or failed): drop what has not started
            for future in pending:
                future.cancel()
