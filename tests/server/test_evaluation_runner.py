"""The runner in-process, on a real SQLite store and the fake judge: it starts no run
while the ingest thread has work, and judges what is queued once it is idle."""

from __future__ import annotations

import asyncio
import threading

from tests.integrations.fake_judge import FakeJudge
from tests.store.test_contract import record
from threadline.server.evaluation.judge import JudgePolicy
from threadline.server.evaluation.model import EvaluatorIn, RunQuery, RunRecord
from threadline.server.evaluation.runner import EvaluationRunner, RunnerConfig
from threadline.server.store import open_store


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

            async def scenario() -> None:
                runner = EvaluationRunner(store, config, ingest_busy=lambda: busy[0])
                runner.start()
                await asyncio.sleep(1.0)
                statuses.append(store.get_runs(project, ["r1"])["r1"].status)
                busy[0] = False
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    if store.get_runs(project, ["r1"])["r1"].status == "done":
                        break
                statuses.append(store.get_runs(project, ["r1"])["r1"].status)
                await runner.stop()

            # In a thread of its own: a browser test earlier in the same process leaves
            # Playwright's event loop running in this one.
            worker = threading.Thread(target=lambda: asyncio.run(scenario()))
            worker.start()
            worker.join(timeout=30)
            assert statuses == ["pending", "done"]
            assert len(judge.answered()) == 1
            (run,) = store.list_runs(project, RunQuery()).items
            assert run.score_id is not None
    finally:
        store.close()
