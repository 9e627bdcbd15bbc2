"""A door to the chDB engine whose inserts are acknowledged before they are visible.

What a replicated ClickHouse behind a load balancer (or ClickHouse Cloud) may do to a
writer: an insert is answered at once, while the rows become visible to reads a while
later, and inserts from one writer become visible in another order than they were
made. ``DelayedInserts`` wraps the engine of ``chdb_http.py``: ``execute`` (every read
and DDL) goes straight through, and ``insert`` is queued and applied by a thread of its
own after a random delay, in random order among those due. Served by a
``ChdbHttpServer(engine=...)``, it is one lagging replica; several, each with its own
delays, are several replicas that catch up at different times.

A replica retries what it could not apply: an insert that fails, and one the engine
never answers. The second happens: now and then (a few runs in ten of the lag tests, on
an idle machine more than on a loaded one) one ``INSERT ... SELECT FROM file()`` on the
pooled chDB connections never returns, its thread waiting inside chDB for a pipeline
that does not finish, while every other statement, inserts included, goes on. A
replica gives an apply ``STUCK_S`` seconds and then applies it again from a fresh
thread, as a replica fetches a part again; the first attempt may still land later, a
duplicate delivery, which every table the lag tests write merges away. ``stuck`` counts
the retried ones, and ``settle`` names the last one when it times out.

Test infrastructure only: it plays the visibility a real cluster gives, not its speed.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from tests.store.chdb_http import ChdbEngine

# How long an apply may take before the replica tries it again (inserts take well under
# a second; many seconds on a machine loaded by other tests).
STUCK_S = 20.0


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
        self._pending: list[tuple[float, tuple[Any, ...]]] = []
        self._applying = 0
        self._lock = threading.Condition()
        self.applied = 0
        self.stuck = 0  # applies the engine did not answer within STUCK_S, tried again
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
            self._pending.append((due, (target, data_format, data, database, settings)))
            self._lock.notify_all()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + self._applying

    def settle(self, timeout_s: float = 60.0) -> None:
        """Wait until every acknowledged insert is visible."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending or self._applying:
                if not self._lock.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(
                        f"{len(self._pending)} inserts still pending"
                        f" (the last failed insert's error: {self.last_error!r})"
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
                    due = [i for i, (at, _) in enumerate(self._pending) if at <= now]
                    if due:
                        break
                    wait = min((at for at, _ in self._pending), default=now + 1) - now
                    self._lock.wait(timeout=max(0.01, wait))
                if self._closed:
                    return
                # Any of the due inserts, not the oldest: visibility out of order.
                _, job = self._pending.pop(self._rng.choice(due))
                self._applying += 1
            error = self._apply(job)
            with self._lock:
                self._applying -= 1
                if error is None:
                    self.applied += 1
                else:
                    self.last_error = error
                    self._pending.append((time.monotonic() + 0.2, job))
                self._lock.notify_all()

    def _apply(self, job: tuple[Any, ...]) -> Exception | None:
        """Apply one insert from a thread of its own; the error it raised, or a
        TimeoutError if it did not return within STUCK_S (its thread is left behind)."""
        done = threading.Event()
        outcome: list[Exception] = []

        def run() -> None:
            try:
                self._engine.insert(*job)
            except Exception as error:  # noqa: BLE001 - a replica retries what it could not apply
                outcome.append(error)
            finally:
                done.set()

        threading.Thread(target=run, daemon=True).start()
        if not done.wait(STUCK_S):
            with self._lock:
                self.stuck += 1
            return TimeoutError(f"an insert into {job[0]} did not return in {STUCK_S:.0f} s")
        return outcome[0] if outcome else None
