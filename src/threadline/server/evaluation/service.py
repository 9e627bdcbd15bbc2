"""Evaluations in a server process: the runner and the online sweep, started and
stopped with the app. Both run on the event loop, their store calls in threads; ingest
never waits for them, and while ingest has work neither a sweep nor a new run starts
(for up to ``ingest_first.MAX_YIELD_SECONDS`` in a row)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from threadline.server.evaluation import online
from threadline.server.evaluation.ingest_first import IngestFirst
from threadline.server.evaluation.runner import EvaluationRunner, RunnerConfig
from threadline.server.settings import Settings
from threadline.server.store import Store

log = logging.getLogger("threadline.evaluation")


def wake_runner(app_state: object) -> None:
    """A route queued runs: the app's runner (``app.state.evaluations``, when the app has
    one) claims them now rather than at its next poll."""
    service = getattr(app_state, "evaluations", None)
    if service is not None:
        service.wake()


class EvaluationService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        ingest_quiet: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.idle_ns = settings.session_idle_seconds * 1_000_000_000
        self.max_waiting = settings.evaluation_max_waiting_runs
        self.enabled = settings.evaluation_concurrency > 0
        config = RunnerConfig.from_settings(settings)  # a bad judge_key_urls stops here
        config.policy.key_urls.warn_if_unbound()
        self.runner = EvaluationRunner(store, config, ingest_quiet=ingest_quiet)
        # Often enough that a session is judged soon after it goes idle, rarely enough
        # to cost nothing: the sweep is one indexed read per online evaluator.
        self.sweep_seconds = min(max(settings.session_idle_seconds / 5, 0.2), 15.0)
        self._sweep_turn = IngestFirst(ingest_quiet)
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if not self.enabled:
            return
        self._loop = asyncio.get_running_loop()
        self.runner.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="threadline-sweep")

    def wake(self) -> None:
        """New runs were queued: claim them now rather than at the next poll. Callable
        from any thread (routes run in the thread pool)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.runner.wake)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.runner.stop()

    async def _sweep_loop(self) -> None:
        while True:
            await self._sweep_turn.turn()
            try:
                swept = asyncio.to_thread(
                    online.sweep, self.store, self.idle_ns, None, self.max_waiting
                )
                if await swept:
                    self.runner.wake()
            except Exception:  # a store hiccup: the next sweep tries again
                log.exception("the sweep for ended sessions failed")
            await asyncio.sleep(self.sweep_seconds)
