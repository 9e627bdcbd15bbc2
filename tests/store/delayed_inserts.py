"""A door to the chDB engine whose inserts are acknowledged before they are visible.

What a replicated ClickHouse behind a load balancer (or ClickHouse Cloud) may do to a
writer: an insert is answered at once, while the rows become visible to reads a while
later, and inserts from one writer become visible in another order than they were
made. ``DelayedInserts`` wraps the engine of ``chdb_http.py``: ``execute`` (every read
and DDL) goes straight through, and ``insert`` is queued and applied by a thread of its
own after a random delay, in random order among those due. Served by a
``ChdbHttpServer(engine=...)``, it is one lagging replica; several, each with its own
delays, are several replicas that catch up at different times.

A replica retries an insert that fails. ``settle`` waits for the inserts acknowledged
before it was called, not for an empty queue: servers that keep writing (the dashboard's
refresher inserts a pass record every second) keep a few inserts pending at every moment,
so a queue that must empty would wait for ever, and did on an idle machine, where the
refresher's passes are quickest.

Test infrastructure only: it plays the visibility a real cluster gives, not its speed.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from tests.store.chdb_http import ChdbEngine

# How many of the oldest due inserts the next one applied is chosen from.
_REORDER = 4


class DelayedInserts:
    def __init__(
        self,
        engine: ChdbEngine,
        seed: int,
        delay_s: tuple[float, float] = (0.2, 2.0),
        immediate: tuple[str, ...] = ("threadline_schema",),
    ) -> None:
        self._engine = engine
        self._rng = random.Random(seed)
        self._delay_s = delay_s
        self._immediate = immediate  # tables whose inserts are not delayed
        # (due, sequence number, insert): the number orders the acknowledgements
        self._pending: list[tuple[float, int, tuple[Any, ...]]] = []
        self._acknowledged = 0  # inserts acknowledged so far (the last sequence number)
        self._applying: set[int] = set()
        self._lock = threading.Condition()
        self.applied = 0
        self.last_error: Exception | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._apply_due, daemon=True)
        self._thread.start()

    def execute(
        self,
        sql: str,
        database: str | None,
        output_format: str,
        settings: dict[str, str] | None = None,
    ) -> bytes:
        return self._engine.execute(sql, database, output_format, settings)

    def insert(
        self,
        target: str,
        data_format: str,
        data: bytes,
        database: str | None,
        settings: dict[str, str] | None = None,
    ) -> None:
        if any(name in target for name in self._immediate):
            self._engine.insert(target, data_format, data, database, settings)
            return
        due = time.monotonic() + self._rng.uniform(*self._delay_s)
        with self._lock:
            self._acknowledged += 1
            job = (target, data_format, data, database, settings)
            self._pending.append((due, self._acknowledged, job))
            self._lock.notify_all()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._applying)

    def settle(self, timeout_s: float = 180.0) -> None:
        """Wait until every insert acknowledged so far is visible (those acknowledged
        meanwhile may still be pending)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            upto = self._acknowledged
            while waiting := self._unapplied(upto):
                if not self._lock.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(
                        f"{waiting} inserts acknowledged before settle() still pending"
                        f" (the last failed insert's error: {self.last_error!r})"
                    )

    def _unapplied(self, upto: int) -> int:
        return sum(seq <= upto for _, seq, _ in self._pending) + sum(
            seq <= upto for seq in self._applying
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _apply_due(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    now = time.monotonic()
                    due = [i for i, (at, _, _) in enumerate(self._pending) if at <= now]
                    if due:
                        break
                    wait = min((at for at, _, _ in self._pending), default=now + 1) - now
                    self._lock.wait(timeout=max(0.01, wait))
                if self._closed:
                    return
                # Any of the four oldest due inserts, not always the oldest: visibility
                # out of order, yet none starves while newer ones keep coming due (a
                # pick among all that are due, on a loaded machine, left two inserts
                # pending past settle's minute).
                oldest = sorted(due, key=lambda i: self._pending[i][1])[:_REORDER]
                _, seq, job = self._pending.pop(self._rng.choice(oldest))
                self._applying.add(seq)
            try:
                self._engine.insert(*job)
                error = None
            except Exception as failed:  # noqa: BLE001 - a replica retries what it could not apply
                error = failed
            with self._lock:
                self._applying.discard(seq)
                if error is None:
                    self.applied += 1
                else:
                    self.last_error = error
                    self._pending.append((time.monotonic() + 0.2, seq, job))
                self._lock.notify_all()
