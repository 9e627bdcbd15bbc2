"""The ingest worker processes: where the CPU work of exports runs, beside the writer.

Decoding and normalising an export is Python under the GIL (~60 µs a span): in the
server process it would take turns with the event loop and the writer, and use one
core. ``--workers N`` starts N processes for it. They are started with ``spawn``, not
``fork``: the server process runs gRPC's threads and uvloop, which do not survive a
fork. A worker holds no state between jobs and never opens the store; it only turns
bytes into records (``prepare.py``), which come back to the server process pickled.

A worker that dies (killed, out of memory) breaks the pool: the export it held is
refused with 503 (exporters retry), and a new pool takes the next ones. A worker
whose server process is gone (SIGKILL gives it no chance to stop them) exits by
itself within a second, instead of lingering.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from threadline.server.errors import Unavailable

log = logging.getLogger("threadline.ingest")

T = TypeVar("T")


class WorkerPool:
    """``count`` worker processes, started at ``start`` and replaced if one dies."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._warm_up: tuple[Callable[..., object], tuple[Any, ...]] = (_ready, ())

    async def start(self, warm_up: Callable[..., object], *args: Any) -> None:
        """Start the processes; return once one of them has run ``warm_up(*args)``,
        an export's path taken empty, so that it can take an export at once."""
        self._warm_up = (warm_up, args)
        self._pool = self._new_pool()
        await asyncio.wrap_future(self._pool.submit(warm_up, *args))

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        # Start every process now, not at the first exports: a spawned interpreter
        # takes a second to import what it needs.
        warm_up, args = self._warm_up
        for _ in range(self.count):
            pool.submit(warm_up, *args)
        return pool

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in a worker process; its exception is raised here."""
        pool = self._pool
        if pool is None or self._closed:
            raise Unavailable("the server is stopping: retry later")
        try:
            return await asyncio.wrap_future(pool.submit(job, *args))
        except BrokenProcessPool:
            if pool is self._pool and not self._closed:
                log.error("an ingest worker process died; starting new ones")
                self._pool = self._new_pool()
                pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("an ingest worker process stopped: retry later") from None

    def close(self) -> None:
        """Let the jobs in hand finish, then stop the processes."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and benchmarks)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)


def _start_worker(server_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the server process stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadline.server import pricing
    from threadline.server.ingest.tuning import tune_allocator, tune_garbage_collector

    tune_allocator()
    pricing.load()  # the price table, once, rather than in the first export
    tune_garbage_collector()
    threading.Thread(target=_exit_with, args=(server_pid,), daemon=True).start()


def _exit_with(server_pid: int) -> None:
    """End this worker once the server process that started it is gone."""
    while os.getppid() == server_pid:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> None:
    """A job that does nothing: it makes the pool start its process."""
