"""A blocking iterator's items, taken from the thread pool several at a time: the
streamed downloads' producer (docs/benchmarks.md, export).

``StreamingResponse`` over a sync iterator asks the thread pool for one item at a time,
and every item pays a hand-off to a worker thread and back (waking it, scheduling the
result on the event loop). A download's chunks are made in ~1 ms each, so that was a
tenth of the export's CPU. Here each hand-off brings ``per_hop`` items, sent one by one
(the socket's writes stay the size of a chunk); the memory held is ``per_hop`` chunks.

Not a thread of its own running ahead: CPython's lock on the interpreter gives a thread
that asks for it only every few milliseconds while another keeps it busy, and the event
loop waiting that long for each chunk made a million-span export twice as slow.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

PER_HOP = 8


async def in_batches(items: Iterator[T], per_hop: int = PER_HOP) -> AsyncIterator[T]:
    """``items`` in order, made in the thread pool ``per_hop`` at a time; an error raised
    while making them is raised here after the items made before it."""
    while True:
        batch, error = await run_in_threadpool(_take, items, per_hop)
        for item in batch:
            yield item
        if error is not None:
            raise error
        if len(batch) < per_hop:
            return


def _take(items: Iterator[T], count: int) -> tuple[list[T], Exception | None]:
    batch: list[T] = []
    try:
        for item in itertools.islice(items, count):
            batch.append(item)
    except Exception as error:  # noqa: BLE001 - raised in the caller, after the items before it
        return batch, error
    return batch, None
