"""The runner and the sweep in-process, on a real SQLite store and the fake judge:
neither starts work while ingest has work, and both catch up once it is idle."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.integrations.fake_judge import FakeJudge
from tests.store.test_contract import MS, T0, record
from threadline.server.evaluation import online
from threadline.server.evaluation.ingest_first import IngestFirst
from threadline.server.evaluation.judge import JudgePolicy
from threadline.server.evaluation.model import EvaluatorIn, RunQuery, RunRecord
from threadline.server.evaluation.runner import EvaluationRunner, RunnerConfig
from threadline.server.evaluation.service import EvaluationService
from threadline.server.settings import Settings
from threadline.server.store import open_store

IDLE_NS = 1_000_000_000


def test_no_run_starts_while_ingest_is_busy(tmp_path):
    store = open_store(f"sqlite://{tmp_path / 'runner.db'}")
    try:
        project = store.create_project("p").id
        store.write_spans(project, [record(1, 1, session="s", input='"hi"', output='"thanks"')])
        with FakeJudge() as judge:
            store.put_evaluator(
                project,
                EvaluatorIn.model_validate(
                    {
                        "name": "resolved",
                        "prompt": "Resolved?",
                        "judge": {"base_url": judge.base_url, "model": "gpt-4o-mini"},
                        "score": {"name": "resolved", "data_type": "boolean"},
                        "online": False,
                    }
                ),
            )
            store.add_runs(
                project,
                [RunRecord("r1", "resolved", "session", "s", "s", "manual", created_ns=1)],
            )
            busy = [True]
            config = RunnerConfig(2, JudgePolicy(timeout_s=5, attempts=1), 10_000)
            statuses: list[str] = []
            clients: list[bool] = []

            async def scenario() -> None:
                runner = EvaluationRunner(
                    store, config, ingest_quiet=lambda: 0.0 if busy[0] else 60.0
                )
                runner.start()
                await asyncio.sleep(1.0)
                statuses.append(store.get_runs(project, ["r1"])["r1"].status)
                clients.append(runner.client_made)  # nothing claimed yet: no HTTP client
                busy[0] = False
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    if store.get_runs(project, ["r1"])["r1"].status == "done":
                        break
                statuses.append(store.get_runs(project, ["r1"])["r1"].status)
                clients.append(runner.client_made)
                await runner.stop()

            # In a thread of its own: a browser test earlier in the same process leaves
            # Playwright's event loop running in this one.
            worker = threading.Thread(target=lambda: asyncio.run(scenario()))
            worker.start()
            worker.join(timeout=30)
            assert statuses == ["pending", "done"]
            assert clients == [False, True]
            assert len(judge.answered()) == 1
            (run,) = store.list_runs(project, RunQuery()).items
            assert run.score_id is not None
    finally:
        store.close()


def test_no_sweep_while_ingest_is_busy(tmp_path):
    """An online evaluator's sweep queues no run while ingest has work, and queues the
    ended session's run once ingest is idle."""
    store = open_store(f"sqlite://{tmp_path / 'sweep.db'}")
    try:
        project = store.create_project("p").id
        with FakeJudge() as judge:
            store.put_evaluator(
                project,
                EvaluatorIn.model_validate(
                    {
                        "name": "resolved",
                        "prompt": "Resolved?",
                        "judge": {"base_url": judge.base_url, "model": "gpt-4o-mini"},
                        "score": {"name": "resolved", "data_type": "boolean"},
                        "online": True,
                    }
                ),
            )
            online.sweep(store, IDLE_NS)  # the first sweep: the evaluator watches from here
            # A session that ends now, so ended one idle time later.
            start = (time.time_ns() - T0) // MS
            store.write_spans(project, [record(1, 1, start=start, length=1, session="s")])
            busy = [True]
            runs: list[int] = []

            async def scenario() -> None:
                service = EvaluationService(
                    store,
                    Settings(session_idle_seconds=1),
                    ingest_quiet=lambda: 0.0 if busy[0] else 60.0,
                )
                await service.start()
                # Sweeps would run every 0.2 s; the session is ended after 1 s.
                await asyncio.sleep(2.5)
                runs.append(len(store.list_runs(project, RunQuery()).items))
                busy[0] = False
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    if store.list_runs(project, RunQuery()).items:
                        break
                runs.append(len(store.list_runs(project, RunQuery()).items))
                await service.stop()

            worker = threading.Thread(target=lambda: asyncio.run(scenario()))
            worker.start()
            worker.join(timeout=30)
            assert runs == [0, 1]
    finally:
        store.close()


def test_evaluation_work_waits_for_ingest_at_most_its_limit():
    """Under ingest that never pauses, a loop of evaluation work still gets a turn."""
    turns: list[float] = []

    async def scenario() -> None:
        waits = IngestFirst(lambda: 0.0, max_yield_seconds=0.3)
        started = time.monotonic()
        await waits.turn()
        turns.append(time.monotonic() - started)
        # Idle for a moment between two exports is not a lull.
        gap = IngestFirst(lambda: 0.01, max_yield_seconds=0.3)
        started = time.monotonic()
        await gap.turn()
        turns.append(time.monotonic() - started)
        idle = IngestFirst(lambda: 60.0)
        started = time.monotonic()
        await idle.turn()
        turns.append(time.monotonic() - started)

    worker = threading.Thread(target=lambda: asyncio.run(scenario()))
    worker.start()
    worker.join(timeout=30)
    assert turns[0] >= 0.3
    assert turns[1] >= 0.3
    assert turns[2] < 0.3
