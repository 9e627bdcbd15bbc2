"""The ingest worker processes (``ingest/workers.py``) and how objects reach them
(``ingest/worker_channel.py``), on real spawned processes.

An export's job and records pass as pickles streamed over a socket; what a job raises
comes back as itself; a worker that dies costs the one job it held (Unavailable: 503,
which exporters retry) and its slot starts a new one for the next.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from threadline.server.errors import BadRequest, Unavailable
from threadline.server.ingest.worker_channel import Channel, ChannelClosed
from threadline.server.ingest.workers import WorkerPool

pytestmark = pytest.mark.slow


def _nothing() -> None:
    pass


def _echo_reversed(data: bytes) -> bytes:
    return data[::-1]


def _refuse(message: str) -> None:
    raise BadRequest(message)


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _meet(directory: str, count: int) -> int:
    """Say this process is here, then wait (at most a minute) until ``count`` jobs are:
    jobs that meet ran at once, in as many processes, however slowly each was picked up
    (two half-second sleeps once ran one after the other in one worker on a loaded
    machine)."""
    Path(directory, f"{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(directory)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_a_large_object_crosses_a_channel_whole_and_a_closed_end_says_so() -> None:
    ours, theirs = socket.socketpair()
    sender, receiver = Channel(ours), Channel(theirs)
    # Larger than a pickle frame, the socket buffers and the allocator's mmap threshold.
    value = {"body": os.urandom(3_000_000), "texts": [str(i) * 50 for i in range(20_000)]}
    thread = threading.Thread(target=sender.send, args=(value,))
    thread.start()
    assert receiver.receive() == value
    thread.join()
    sender.close()
    with pytest.raises(ChannelClosed):
        receiver.receive()
    receiver.close()


def test_jobs_run_in_workers_and_their_errors_come_back_as_themselves() -> None:
    async def scenario() -> None:
        pool = WorkerPool(2)
        await pool.start(_nothing)
        try:
            body = os.urandom(5_000_000)
            assert await pool.run(_echo_reversed, body) == body[::-1]
            with pytest.raises(BadRequest, match="not a span"):
                await pool.run(_refuse, "not a span")
            # Both workers take jobs at once: two jobs that wait for each other run in
            # two processes (in one, the first would wait for the second in vain).
            with tempfile.TemporaryDirectory() as meeting:
                pids = await asyncio.gather(
                    pool.run(_meet, meeting, 2), pool.run(_meet, meeting, 2)
                )
            assert len(set(pids)) == 2 and set(pids) <= set(pool.pids())
            assert os.getpid() not in pids
        finally:
            pool.close()
        assert pool.pids() == []

    asyncio.run(scenario())


def test_a_worker_that_dies_costs_its_job_and_is_replaced() -> None:
    async def scenario() -> None:
        pool = WorkerPool(1)
        await pool.start(_nothing)
        try:
            running = asyncio.ensure_future(pool.run(_sleep, 30))
            deadline = time.monotonic() + 30
            while not pool.pids():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            (first,) = pool.pids()
            await asyncio.sleep(0.5)  # the job has reached the worker
            os.kill(first, signal.SIGKILL)
            with pytest.raises(Unavailable):
                await asyncio.wait_for(running, 10)
            # The next job gets a new worker.
            assert await asyncio.wait_for(pool.run(_sleep, 0), 60) != first
        finally:
            pool.close()

    asyncio.run(scenario())
