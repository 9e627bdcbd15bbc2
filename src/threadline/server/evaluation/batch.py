"""Judging a batch of runs to the end, for ``threadline evaluate``: the runs are queued
in the store first, then this process claims and judges them, a bounded number at a
time, and reports each one finished. A server beside it may claim some of them too;
those are waited for, not judged twice. Interrupted, the runs left stay queued, and a
server (or the next ``threadline evaluate``) judges them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from threadline.server.evaluation.model import EvaluationRun, RunRecord
from threadline.server.evaluation.runner import RunnerConfig, evaluate_run, finish_run
from threadline.server.store import Store

_POLL_SECONDS = 0.25


async def judge_all(
    store: Store,
    config: RunnerConfig,
    project_id: int,
    runs: list[RunRecord],
    on_finished: Callable[[EvaluationRun], None],
) -> None:
    todo = [r.id for r in runs]  # not yet seen claimed by this process nor finished
    inflight: dict[asyncio.Task[None], RunRecord] = {}
    concurrency = max(config.concurrency, 1)

    async def judge_one(client: httpx.AsyncClient, run: RunRecord) -> None:
        outcome = await evaluate_run(store, client, config, run)
        await asyncio.to_thread(finish_run, store, run, outcome)

    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(limits=limits) as client:
        try:
            while todo or inflight:
                free = concurrency - len(inflight)
                if free > 0 and todo:
                    window = todo[: free * 4]
                    claimed = await asyncio.to_thread(
                        store.claim_runs, free, config.lease_ns, (project_id, window)
                    )
                    for run in claimed:
                        todo.remove(run.id)
                        inflight[asyncio.create_task(judge_one(client, run))] = run
                    # What was not claimable is running elsewhere or finished already.
                    others = [i for i in window if i in todo]
                    if others:
                        found = await asyncio.to_thread(store.get_runs, project_id, others)
                        for run_id, state in found.items():
                            if state.status in ("done", "failed"):
                                todo.remove(run_id)
                                on_finished(state)
                if not inflight:
                    await asyncio.sleep(_POLL_SECONDS)
                    continue
                done, _ = await asyncio.wait(
                    inflight, timeout=_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    run = inflight.pop(task)
                    task.result()
                    finished = await asyncio.to_thread(store.get_runs, project_id, [run.id])
                    on_finished(finished[run.id])
        finally:
            if inflight:
                for task in inflight:
                    task.cancel()
                await asyncio.gather(*inflight, return_exceptions=True)
                await asyncio.to_thread(store.release_runs, list(inflight.values()))
