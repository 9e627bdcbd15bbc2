"""The statements that look rows up by their key, against the forms they replaced, on a
large store: each pair run in turns on the same reader, CPU time of the thread.

    cp -r /work/bench-data/dash-base/<base> /tmp/x   # a copy: this adds runs to it
    python bench/dashboard.py ...                      # or any store with scores
    python bench/read_by_key.py --db /tmp/x/threadline.db [--repeat 9]

Without ``sqlite_stat1`` SQLite's planner assumes an equality on an index's first
column selects ~10 rows, so for ``project_id = ? AND key IN (a list of a dozen)`` an
index searched by ``project_id`` alone (covering, or giving the order asked) looked
cheaper than a dozen lookups by key, and read every row of the project
(docs/benchmarks.md, round 16). For each statement the store now runs (imported from
its module, so that what is timed is what runs; the turns' scores' statement, which
``scores.list_scores`` puts together, as it puts it together), this prints its median
CPU ms against the form it replaced, with the same arguments, and checks that both find
the same rows.

The store needs scores on sessions and traces (``bench/dashboard.py --score-share``);
evaluation runs, one per session of the largest project, are added once if it has
none.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from threadline.server.evaluation.model import EvaluatorIn, RunRecord
from threadline.server.store.record_columns import RUNS, SCORES
from threadline.server.store.sqlite import driver, evaluations, metric_scores, search
from threadline.server.store.sqlite.store import SQLiteStore


def marks(ids: Sequence[Any]) -> str:
    return ", ".join("?" * len(ids))


def add_runs(store: SQLiteStore, project: int) -> None:
    """One pending run per session of ``project``, unless it has runs already."""
    with store._read() as conn:
        if conn.execute(
            "SELECT 1 FROM evaluation_runs WHERE project_id = ? LIMIT 1", (project,)
        ).fetchone():
            return
        sessions = [
            row[0]
            for row in conn.execute(
                "SELECT session_id FROM sessions WHERE project_id = ?", (project,)
            )
        ]
    store.put_evaluator(
        project,
        EvaluatorIn.model_validate(
            {
                "name": "resolved",
                "prompt": "Was it resolved?",
                "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                "score": {"name": "resolved", "data_type": "boolean"},
                "online": False,
            }
        ),
    )
    for i in range(0, len(sessions), 5000):
        store.add_runs(
            project,
            [
                RunRecord(
                    id=f"run-{s}",
                    evaluator="resolved",
                    target_kind="session",
                    target_id=s,
                    session_id=s,
                    trigger="manual",
                    created_ns=1 + i + n,
                )
                for n, s in enumerate(sessions[i : i + 5000])
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    store = SQLiteStore(args.db)
    rng = random.Random(16)
    with store._read() as conn:
        project, sessions = conn.execute(
            "SELECT project_id, COUNT(*) FROM sessions GROUP BY project_id ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    add_runs(store, project)
    with store._read() as conn:
        counts = {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", (project,)
            ).fetchone()[0]
            for table in ("sessions", "traces", "scores", "score_rollups", "evaluation_runs")
        }
        scored = {
            kind: sorted(
                rng.sample(
                    [
                        row[0]
                        for row in conn.execute(
                            "SELECT target_id FROM score_rollups"
                            " WHERE project_id = ? AND target_kind = ?",
                            (project, kind),
                        )
                    ],
                    40,
                )
            )
            for kind in ("session", "trace")
        }
        run_ids = sorted(
            f"run-{s}"
            for s in rng.sample(
                [
                    row[0]
                    for row in conn.execute(
                        "SELECT session_id FROM sessions WHERE project_id = ?", (project,)
                    )
                ],
                30,
            )
        )
        # A word few documents hold: a number of one session's question.
        word = f'"{rng.randrange(sessions):d}"'
    print(f"project {project}: {counts}; SQLite {driver.describe()}")
    sessions_40, traces_20 = scored["session"], scored["trace"][:20]
    now_ns = time.time_ns()
    pairs: list[tuple[str, str, list[Any], str, list[Any]]] = [
        (
            "a write's probe for rollups waiting for their target (every write of a new"
            " trace or session)",
            "SELECT 1 FROM score_rollups WHERE project_id = ? AND target_hour IS NULL LIMIT 1",
            [project],
            metric_scores._ANY_WAITING,
            [project],
        ),
        (
            "a score write's sessions' hours (40 sessions)",
            "SELECT session_id, start_ns, end_ns FROM sessions"
            f" WHERE project_id = ? AND session_id IN ({marks(sessions_40)})",
            [project, *sessions_40],
            metric_scores._TARGET_HOURS["session"],
            [json.dumps(sessions_40), project],
        ),
        (
            "a score write's traces' hours (40 traces)",
            "SELECT k.trace_id, t.start_ns, t.end_ns FROM trace_keys AS k"
            " CROSS JOIN traces AS t ON t.trace_key = k.key"
            f" WHERE k.project_id = ? AND k.trace_id IN ({marks(scored['trace'])})",
            [project, *scored["trace"]],
            metric_scores._TARGET_HOURS["trace"],
            [json.dumps(scored["trace"]), project],
        ),
        (
            "the session page's turns' scores (20 traces)",
            f"SELECT {SCORES.sql} FROM scores WHERE project_id = ?"
            f" AND trace_id IN ({marks(traces_20)}) ORDER BY created_ns DESC, id DESC LIMIT 51",
            [project, *traces_20],
            f"SELECT {SCORES.qualified('scores')} FROM json_each(?) AS wanted CROSS JOIN scores"
            " ON scores.trace_id = wanted.value WHERE scores.project_id = ?"
            " ORDER BY scores.created_ns DESC, scores.id DESC LIMIT ?",
            [json.dumps(traces_20), project, 51],
        ),
        (
            f"a rare search's traces ({word})",
            "SELECT trace_id FROM trace_keys WHERE project_id = ? AND key IN"
            " (SELECT rowid >> 20 FROM search_text WHERE search_text MATCH ?)",
            [project, word],
            search._matching_traces(),
            [word, project],
        ),
        (
            f"a rare search's sessions ({word})",
            "SELECT DISTINCT session_id FROM traces WHERE trace_key IN"
            " (SELECT key FROM trace_keys WHERE project_id = ? AND key IN"
            " (SELECT rowid >> 20 FROM search_text WHERE search_text MATCH ?))"
            " AND session_id IS NOT NULL",
            [project, word],
            "SELECT DISTINCT session_id FROM traces WHERE trace_key IN"
            f" ({search._matching_traces('key')}) AND session_id IS NOT NULL",
            [word, project],
        ),
        (
            "claiming runs asked for by id (30 runs)",
            f"SELECT {RUNS.sql} FROM evaluation_runs WHERE project_id = ?"
            f" AND id IN ({marks(run_ids)}) AND (status = 'pending'"
            " OR (status = 'running' AND claimed_until_ns < ?)) ORDER BY created_ns LIMIT ?",
            [project, *run_ids, now_ns, 20],
            evaluations._CLAIMABLE_AMONG,
            [json.dumps(run_ids), project, now_ns, 20],
        ),
    ]
    print("statement | before: CPU ms (p50) | now | rows | plan before -> now")
    with store._read() as conn:
        for label, old_sql, old_args, new_sql, new_args in pairs:
            taken: dict[str, list[float]] = {"old": [], "new": []}
            found: dict[str, list[Any]] = {}
            for turn in range(args.repeat):
                # In turns, each arm first every other time (A B B A ...).
                order = ("old", "new") if turn % 2 == 0 else ("new", "old")
                for arm in order:
                    sql, params = (old_sql, old_args) if arm == "old" else (new_sql, new_args)
                    started = time.thread_time()
                    rows = conn.execute(sql, params).fetchall()
                    taken[arm].append(time.thread_time() - started)
                    found[arm] = rows
            same = sorted(map(repr, found["old"])) == sorted(map(repr, found["new"]))
            plans = {
                arm: "; ".join(
                    row[3]
                    for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)
                    if row[3].startswith(("SEARCH", "SCAN"))
                )
                for arm, sql, params in (
                    ("old", old_sql, old_args),
                    ("new", new_sql, new_args),
                )
            }
            print(
                f"{label} | {statistics.median(taken['old']) * 1e3:.3f}"
                f" | {statistics.median(taken['new']) * 1e3:.3f}"
                f" | {len(found['new'])}{'' if same else ' (DIFFERENT from before)'}"
                f" | {plans['old']} -> {plans['new']}"
            )
    store.close()


if __name__ == "__main__":
    main()
