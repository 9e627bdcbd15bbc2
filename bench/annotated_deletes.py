"""What deleting traces or sessions costs in a project with many notes and share links:
the delete removes the notes on what it deletes and the links to it (migration 0041's
indexes find them by what they name; without, every note and link of the project was
read at each delete).

    cp -r /work/bench-data/dash-base/<base> /tmp/x    # a copy: this adds notes and deletes
    PYTHONPATH=<tree>/src python bench/annotated_deletes.py --db /tmp/x/threadline.db --seed N

Run it with the ``src`` of each tree to compare, each on its own copy (a tree's store
applies its migrations at open), in turns. The first run adds ``--notes`` notes (every
other one on a trace) and as many share links (every other one to a trace, the others
to sessions) on the project's sessions; each run then deletes ``--batches`` batches of
``--per`` sessions, and as many of traces, picked at random by ``--seed`` among those
left, and prints the median CPU ms of a batch (the thread's: the store writes in the
caller's thread) and the plans of the notes' and links' deletes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from threadline.server.model import NoteIn
from threadline.server.store.base import StoredShare
from threadline.server.store.sqlite.store import SQLiteStore


def annotate(store: SQLiteStore, project: int, count: int) -> None:
    """``count`` notes and as many links on the project's traces and sessions, unless it
    has notes already."""
    with store._read() as conn:
        if conn.execute("SELECT 1 FROM notes WHERE project_id = ?", (project,)).fetchone():
            return
        rows = conn.execute(
            "SELECT session_id, trace_id FROM traces WHERE project_id = ?"
            " AND session_id IS NOT NULL ORDER BY trace_id LIMIT ?",
            (project, count),
        ).fetchall()
    for n, (session_id, trace_id) in enumerate(rows):
        on_trace = n % 2 == 0
        store.add_note(
            project,
            NoteIn(session_id=session_id, trace_id=trace_id if on_trace else None, body="seen"),
        )
        store.add_share(
            StoredShare(
                id=f"bench-link-{n}",
                project_id=project,
                token_hash=n.to_bytes(32, "big"),
                kind="trace" if on_trace else "session",
                target_id=trace_id if on_trace else session_id,
                created_ns=1 + n,
                expires_ns=10**19 // 2,
                revoked_ns=None,
                hide_io=False,
                hide_metadata=(),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--per", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    store = SQLiteStore(args.db)
    try:
        project = max(store.list_projects(), key=lambda p: p.id).id
        started = time.perf_counter()
        annotate(store, project, args.notes)
        with store._read() as conn:
            notes, links = (
                conn.execute(
                    f"SELECT count(*) FROM {t} WHERE project_id = ?", (project,)
                ).fetchone()[0]
                for t in ("notes", "share_links")
            )
            sessions = [
                r[0]
                for r in conn.execute(
                    "SELECT session_id FROM sessions WHERE project_id = ?", (project,)
                )
            ]
            plans = {
                sql: [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args_)]
                for sql, args_ in (
                    (
                        "DELETE FROM notes WHERE project_id = ? AND trace_id IN (?, ?)",
                        (project, "a", "b"),
                    ),
                    (
                        "DELETE FROM share_links WHERE project_id = ? AND kind = 'trace'"
                        " AND target_id IN (?, ?)",
                        (project, "a", "b"),
                    ),
                )
            }
        print(
            f"project {project}: {notes} notes, {links} links"
            f" ({time.perf_counter() - started:.1f} s)"
        )
        for sql, plan in plans.items():
            print(f"  {sql[:40]}…: {plan}")
        rng = random.Random(args.seed)
        picked = rng.sample(sessions, 2 * args.batches * args.per)
        by_session, by_trace = [], []
        for b in range(args.batches):
            batch = picked[2 * b * args.per : (2 * b + 1) * args.per]
            began = time.thread_time()
            store.delete_sessions(project, batch)
            by_session.append((time.thread_time() - began) * 1000)
            with store._read() as conn:
                traces = [
                    r[0]
                    for s in picked[(2 * b + 1) * args.per : (2 * b + 2) * args.per]
                    for r in conn.execute(
                        "SELECT trace_id FROM traces WHERE project_id = ? AND session_id = ?"
                        " LIMIT 1",
                        (project, s),
                    )
                ]
            began = time.thread_time()
            store.delete_traces(project, traces)
            by_trace.append((time.thread_time() - began) * 1000)
        print(
            f"delete_sessions of {args.per}: {statistics.median(by_session):.2f} ms CPU (p50 of"
            f" {args.batches}); delete_traces of {args.per}: {statistics.median(by_trace):.2f} ms"
        )
    finally:
        store.close()


if __name__ == "__main__":
    main()
