"""The ingest worker processes: where the CPU work of exports runs, beside the writer.

Decoding and normalising an export is Python under the GIL (~60 µs a span): in the
server process it would take turns with the event loop and the writer, and use one
core. ``--workers N`` starts N processes for it. They are started with ``spawn``, not
``fork``: the server process runs gRPC's threads and uvloop, which do not survive a
fork. A worker holds no state between jobs and never opens the store; it only turns
bytes into records (``prepare.py``).

Each worker is served by a thread of the server process, its slot: the slot takes the
next job from the queue all slots share (so whichever worker is free takes it), sends it
to its worker over a socket and waits for the answer (``worker_channel.py``: the pickles
are streamed, frame by frame, with no message held whole on either side). A worker that
dies (killed, out of memory) costs the job it held: that export is refused with 503
(exporters retry), and its slot starts a new worker for the next. A worker whose server
process is gone (SIGKILL gives it no chance to stop them) sees its socket close and
exits, or within a second notices it has a new parent.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

from threadline.server.errors import Unavailable
from threadline.server.ingest.worker_channel import Channel, ChannelClosed

log = logging.getLogger("threadline.ingest")

T = TypeVar("T")

_Job = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]
# Jobs sent to a worker before its answers: the one it works on and the next.
_SENT_AHEAD = 2


class WorkerPool:
    """``count`` worker processes, started at ``start``; one that dies is replaced."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._slots: list[_Slot] = []
        self._closed = False

    async def start(self, warm_up: Callable[..., object], *args: Any) -> None:
        """Start the processes; return once one of them has run ``warm_up(*args)``,
        an export's path taken empty, so that it can take an export at once."""
        ready: Future[None] = Future()
        idle = _Idle()
        self._slots = [
            _Slot(i, self._jobs, idle, (warm_up, args), ready) for i in range(self.count)
        ]
        await asyncio.wrap_future(ready)

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in a worker process; its exception is raised here."""
        if self._closed or not self._slots:
            raise Unavailable("the server is stopping: retry later")
        done: Future[T] = Future()
        self._jobs.put((job, args, done))
        # Cancelled (the client went away): a slot that has not started it skips it.
        return await asyncio.wrap_future(done)

    def close(self) -> None:
        """Let the jobs in hand finish, cancel those not started, stop the processes."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                waiting = self._jobs.get_nowait()
            except queue.Empty:
                break
            if waiting is not None:
                waiting[2].cancel()
        for _ in self._slots:
            self._jobs.put(None)
        for slot in self._slots:
            slot.join()

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and benchmarks)."""
        return sorted(pid for slot in self._slots if (pid := slot.pid) is not None)


class _Idle:
    """How many slots wait for a job with none out (``with``: while one does)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.count -= 1


class _Slot:
    """A thread of the server process that serves one worker process at a time."""

    def __init__(
        self,
        number: int,
        jobs: queue.SimpleQueue[_Job | None],
        idle: _Idle,
        warm_up: tuple[Callable[..., object], tuple[Any, ...]],
        ready: Future[None],
    ) -> None:
        self._jobs = jobs
        self._idle = idle
        self._warm_up = warm_up
        self._ready = ready
        self._process: Any = None  # multiprocessing's SpawnProcess
        self._channel: Channel | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"threadline-ingest-worker-{number}", daemon=True
        )
        self._thread.start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or not process.is_alive() else process.pid

    def _run(self) -> None:
        try:
            # Every process now, not at the first exports: a spawned interpreter takes
            # a second to import what it needs. Counted as free meanwhile: the others
            # do not send jobs ahead that it will take in a moment.
            with self._idle:
                self._start_worker()
        except BaseException as error:  # noqa: BLE001 - the next job tries again
            log.error("an ingest worker process could not start: %r", error)
            self._settle_ready(error)
        # The jobs sent to the worker and not answered yet, oldest first.
        out: deque[Future[Any]] = deque()
        stopping = False
        try:
            while out or not stopping:
                # Another job goes while the worker works on one, so that it finds the
                # next one there when it is done rather than waiting for this thread
                # to read its answer and fetch the next.
                while not stopping and len(out) < _SENT_AHEAD:
                    if out:
                        # Ahead only while no other worker is free for it.
                        if self._idle.count:
                            break
                        try:
                            job = self._jobs.get_nowait()
                        except queue.Empty:
                            break
                    else:
                        with self._idle:
                            job = self._jobs.get()
                    if job is None:
                        stopping = True
                        break
                    function, args, done = job
                    del job
                    if not done.set_running_or_notify_cancel():
                        continue
                    try:
                        channel = self._channel or self._start_worker()
                        channel.send((function, args))
                    except BaseException as error:  # noqa: BLE001 - no export waits forever
                        # Unpicklable, or the worker is gone: where the stream stands is
                        # unknown, so the worker is replaced.
                        self._lost(out)
                        done.set_exception(_unavailable(error))
                        continue
                    out.append(done)
                    # Not kept while the worker works: an export's body is megabytes.
                    del function, args, done
                if not out:
                    continue
                try:
                    ok, value = self._receive()
                except BaseException as error:  # noqa: BLE001 - no export waits forever
                    first = out.popleft()
                    self._lost(out)
                    first.set_exception(_unavailable(error))
                    continue
                done = out.popleft()
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)
                # Not kept while waiting: an export's records are megabytes, freed once
                # the writer is done with them.
                del done, value
        finally:
            self._lost(out)

    def _receive(self) -> tuple[bool, Any]:
        assert self._channel is not None  # jobs are out only while a worker runs
        result: tuple[bool, Any] = self._channel.receive()
        return result

    def _lost(self, out: deque[Future[Any]]) -> None:
        """Stop the worker; the jobs it held get a 503, which exporters retry."""
        if self._channel is not None and out:
            log.error("an ingest worker process stopped with jobs in hand; starting a new one")
        self._stop_worker()
        while out:
            out.popleft().set_exception(_unavailable(ChannelClosed()))

    def _call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """Run ``function(*args)`` in this slot's worker, started (and warmed up) first
        if it has none."""
        channel = self._channel or self._start_worker()
        channel.send((function, args))
        result: tuple[bool, Any] = channel.receive()
        return result

    def _start_worker(self) -> Channel:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=_serve, args=(theirs, os.getpid()), name="threadline-ingest", daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._channel = process, Channel(ours)
        warm_up, args = self._warm_up
        # The export path taken empty: what the first export needs is loaded now.
        try:
            ok, value = self._call(warm_up, args)
        except ChannelClosed:
            self._stop_worker()
            raise
        if not ok:
            self._stop_worker()
            raise value
        self._settle_ready(None)
        return self._channel

    def _settle_ready(self, error: BaseException | None) -> None:
        """Tell ``WorkerPool.start`` the first outcome of any slot's start."""
        try:
            if error is None:
                self._ready.set_result(None)
            else:
                self._ready.set_exception(error)
        except InvalidStateError:
            pass  # another slot's came first

    def _stop_worker(self) -> None:
        channel, process = self._channel, self._process
        self._channel = None
        if channel is not None:
            channel.close()  # the worker sees its socket close and exits
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()

    def join(self) -> None:
        self._thread.join()


def _unavailable(error: BaseException) -> BaseException:
    """What a job's exporter is told when its worker went away (or ``error`` itself,
    when it was not that)."""
    if isinstance(error, ChannelClosed):
        return Unavailable("an ingest worker process stopped: retry later")
    return error


def _serve(sock: socket.socket, server_pid: int) -> None:
    """A worker process: run the jobs the server process sends, until it stops."""
    _start_worker(server_pid)
    channel = Channel(sock)
    # The next job is read as soon as it comes, while this one is worked on.
    jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None]
    jobs = queue.SimpleQueue()
    threading.Thread(target=_receive_jobs, args=(channel, jobs), daemon=True).start()
    while (job := jobs.get()) is not None:
        function, args = job
        del job
        try:
            result: tuple[bool, Any] = (True, function(*args))
        except Exception as error:  # noqa: BLE001 - raised in the server process
            result = (False, _picklable(error))
        # Freed before the next job: this one's body and records are megabytes.
        del function, args
        try:
            channel.send(result)
        except ChannelClosed:
            return
        except Exception:
            # A result that cannot be pickled, part of it maybe sent already: the
            # server reads a closed channel, answers 503 and starts a new worker.
            log.exception("an ingest job's result could not be sent")
            return
        del result


def _receive_jobs(
    channel: Channel, jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None]
) -> None:
    try:
        while True:
            jobs.put(channel.receive())
    except ChannelClosed:
        jobs.put(None)


def _picklable(error: Exception) -> Exception:
    """``error``, or a plain one saying what it was if it cannot be pickled."""
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - any reason: the server gets the text instead
        return RuntimeError(f"an ingest job failed: {error!r}")
    return error


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
