"""Ingest first: evaluation work in a server process waits while ingest has work.

Judging and the sweep for ended sessions run in the same process as ingest and compete
with it for the interpreter and the database's one writer. Whatever they do can wait a
little; an exporter's answer should not. So each loop of evaluation work (the runner's
claims, the online sweep) asks for its turn first, and gets it once ingest has had
nothing in hand for ``QUIET_SECONDS`` (not merely at this instant: under a steady load
the ingest thread is idle for milliseconds between exports, and work started in such a
gap competes with the next export), or once it has waited ``MAX_YIELD_SECONDS`` in a
row, so that evaluations still advance under ingest that never pauses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# How long a loop of evaluation work waits for ingest, at most, before it takes a turn
# anyway (and then waits again).
MAX_YIELD_SECONDS = 30.0
# How long ingest must have been idle for evaluation work to count it as a lull.
QUIET_SECONDS = 0.5
_POLL_SECONDS = 0.05


class IngestFirst:
    """One loop's turn-taking with ingest. ``ingest_quiet`` says how many seconds ingest
    has had no work (0 while it has some); without it (a process that does not ingest),
    every turn is immediate."""

    def __init__(
        self,
        ingest_quiet: Callable[[], float] | None,
        max_yield_seconds: float = MAX_YIELD_SECONDS,
    ) -> None:
        self._ingest_quiet = ingest_quiet
        self._max_yield = max_yield_seconds

    async def turn(self) -> None:
        """Return once this loop may work: ingest is in a lull, or it waited long enough."""
        if self._ingest_quiet is None:
            return
        waited_since = time.monotonic()
        while (quiet := self._ingest_quiet()) < QUIET_SECONDS:
            if time.monotonic() - waited_since >= self._max_yield:
                return
            await asyncio.sleep(max(QUIET_SECONDS - quiet, _POLL_SECONDS))
