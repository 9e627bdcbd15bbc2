"""A streamed download's chunks are made in the thread pool several at a time (one
hand-off per ``per_hop`` chunks, not one per chunk), sent in order, errors included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from threadline.server.thread_batches import in_batches


def test_items_come_in_order_made_per_hop_at_a_time_off_the_loop():
    made: list[int] = []
    threads: set[int] = set()

    def items() -> Iterator[bytes]:
        for n in range(20):
            made.append(n)
            threads.add(threading.get_ident())
            yield b"%d" % n

    async def consume() -> list[tuple[bytes, int]]:
        # For each item: how many had been made when it reached the loop.
        return [(item, len(made)) async for item in in_batches(items(), per_hop=8)]

    loop_thread = threading.get_ident()
    got = asyncio.run(consume())
    assert [item for item, _ in got] == [b"%d" % n for n in range(20)]
    # Item 0 arrived with the first 8 made, item 8 with 16, item 16 with all 20.
    assert [made_by for _, made_by in got] == [8] * 8 + [16] * 8 + [20] * 4
    assert loop_thread not in threads


def test_an_error_comes_after_the_items_made_before_it():
    def items() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ValueError("the store went away")

    async def consume(received: list[bytes]) -> None:
        async for item in in_batches(items(), per_hop=8):
            received.append(item)

    received: list[bytes] = []
    with pytest.raises(ValueError, match="went away"):
        asyncio.run(consume(received))
    assert received == [b"a", b"b"]
