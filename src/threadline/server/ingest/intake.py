"""The intake queue: exports acknowledged while the ingest thread was busy, kept on disk
until one is written into the store.

An export that arrives while its process's ingest thread is still writing earlier ones
need not wait for them: once its body is checked (see ``IngestPipeline.export``) it is
written here, one file per export, and acknowledged. The ingest thread of any worker
process then claims the oldest file, writes its spans into the store and deletes it.
Workers therefore share the backlog, whichever of them accepted each connection.

A file is written under a temporary name and renamed into place, so a reader never sees
half of one. Claiming is a rename into ``claimed/`` with the claimant's token in the
name: a rename succeeds for one process only. Each process holds a lock on a file of
its token for as long as it lives (``flock``: the kernel lets go of it when the process
dies, however it dies), so a claim whose token's lock is free belongs to a dead process,
and the next process to start puts it back in the queue. If a process dies after the
commit and before the delete, the export is written again; that changes nothing, since
spans are stored once per ``(project, trace_id, span_id)``.

The files survive the death of the process, as SQLite commits do with
``synchronous=NORMAL`` (neither is flushed to the disk itself: a power loss can take
back the last ones).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

_SUFFIX = ".otlp"


@dataclass(frozen=True)
class Claim:
    """One export taken from the queue by this process: its project and protobuf body."""

    path: Path
    project_id: int
    body: bytes


class Intake:
    """The queue in one directory, shared by every worker process of a data directory.

    A queued file is named ``<time_ns>-<token>-<n>-<project_id>.otlp``: sorting the
    names sorts the exports by arrival, whichever process wrote them.
    """

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self._claimed = directory / "claimed"
        self._claimed.mkdir(parents=True, exist_ok=True)
        self._token = f"{os.getpid()}_{time.time_ns()}"
        self._lock = _hold_lock(self._claimed / f"{self._token}.lock")
        self._numbers = itertools.count()

    def queued(self) -> list[str]:
        """Names of the exports waiting, oldest first."""
        with os.scandir(self.directory) as entries:
            return sorted(
                e.name
                for e in entries
                if e.name.endswith(_SUFFIX) and not e.name.startswith(".")  # "." : partial
            )

    def depth(self) -> int:
        """Exports acknowledged and not yet written: queued, or claimed and being written."""
        with os.scandir(self._claimed) as entries:
            claimed = sum(1 for e in entries if _is_claim(e.name))
        return len(self.queued()) + claimed

    def has_room(self) -> bool:
        return len(self.queued()) < self.limit

    def put(self, project_id: int, body: bytes) -> None:
        """Queue ``body`` (an ``ExportTraceServiceRequest`` in protobuf) for
        ``project_id``; it is on disk when this returns."""
        name = f"{time.time_ns():020d}-{self._token}-{next(self._numbers)}-{project_id}{_SUFFIX}"
        partial = self.directory / ("." + name)
        try:
            partial.write_bytes(body)
            partial.rename(self.directory / name)
        except OSError:
            partial.unlink(missing_ok=True)
            raise

    def claim(self) -> Claim | None:
        """The oldest queued export, now this process's to write; None if none is left."""
        for name in self.queued():
            claimed = self._claimed / f"{name}.{self._token}"
            try:
                os.rename(self.directory / name, claimed)
            except FileNotFoundError:
                continue  # another process claimed it first
            try:
                project_id = int(name.removesuffix(_SUFFIX).rsplit("-", 1)[1])
            except (IndexError, ValueError):  # not a name this module gives
                os.rename(claimed, claimed.with_name(claimed.name + ".damaged"))
                continue
            return Claim(claimed, project_id, claimed.read_bytes())
        return None

    def done(self, claim: Claim) -> None:
        """The claimed export is written into the store: it leaves the queue."""
        claim.path.unlink()

    def release(self, claim: Claim) -> None:
        """Give a claimed export back to the queue unwritten."""
        os.rename(claim.path, self.directory / claim.path.name.rsplit(".", 1)[0])

    def set_aside(self, claim: Claim) -> None:
        """Keep a claimed export that cannot be written out of the queue, for a person
        to look at (``claimed/*.damaged``)."""
        os.rename(claim.path, claim.path.with_name(claim.path.name + ".damaged"))

    def recover(self) -> int:
        """Put back in the queue the exports claimed by processes that have died, and
        delete the files they never finished writing (never acknowledged); returns how
        many exports came back."""
        dead: dict[str, bool] = {}

        def is_dead(token: str) -> bool:
            # A process makes its lock before it writes or claims anything, and deletes
            # it only once it has written all it claimed: a missing lock is a dead one.
            if token not in dead:
                lock = self._claimed / f"{token}.lock"
                dead[token] = not lock.exists() or _lock_is_free(lock)
            return dead[token]

        recovered = 0
        with os.scandir(self._claimed) as entries:
            claims = [e.name for e in entries if _is_claim(e.name)]
        for name in claims:
            queued_name, _, token = name.rpartition(".")
            if is_dead(token):
                try:
                    os.rename(self._claimed / name, self.directory / queued_name)
                    recovered += 1
                except FileNotFoundError:
                    pass  # another starting process recovered it
        with os.scandir(self.directory) as entries:
            partial = [e.name for e in entries if e.name.startswith(".")]
        for name in partial:
            if is_dead(name.split("-")[1]):
                (self.directory / name).unlink(missing_ok=True)
        with os.scandir(self._claimed) as entries:
            locks = [e.name for e in entries if e.name.endswith(".lock")]
        for name in locks:
            if not name.startswith(".") and is_dead(name.removesuffix(".lock")):
                (self._claimed / name).unlink(missing_ok=True)
        return recovered

    def close(self) -> None:
        os.close(self._lock)
        (self._claimed / f"{self._token}.lock").unlink(missing_ok=True)


def _is_claim(name: str) -> bool:
    """Whether a name in ``claimed/`` is a claimed export's (``<queued name>.<token>``),
    not a lock or a set-aside file."""
    return name.rpartition(".")[0].endswith(_SUFFIX)


def _hold_lock(path: Path) -> int:
    # Locked under another name first: no other process sees the file unlocked.
    partial = path.with_name("." + path.name)
    fd = os.open(partial, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    partial.rename(path)
    return fd


def _lock_is_free(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False  # its process closed cleanly meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing lets go of the lock, if this took it
    return True
