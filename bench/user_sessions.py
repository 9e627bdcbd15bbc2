"""The Sessions list filtered by a user, for a rare user and for one of about half the
sessions, on a large store: each read's median CPU ms (the reading thread's), and a
digest of the ids it listed, so that runs with the ``src`` of two trees can be compared.

    cp -r /work/bench-data/dash-base/<base> /tmp/x    # a copy: this gives it a common user
    PYTHONPATH=<tree>/src python bench/user_sessions.py --db /tmp/x/threadline.db

The kept bases have 5,000 users of 20 sessions each. The first run makes the traces of
every other session (``--common-every``) the common user's, ``user-common``, and those
of about 1 %, 3 % and 10 % of the sessions three users' between, by SQL on the copy
(what the list reads: ``traces.user_id`` and its index). A page and the next are read;
``--force`` takes one form for every user, to find where the forms meet;
``--old-user N`` reads only a user of the N oldest sessions (a common user gone quiet).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline.server.model import SessionQuery
from threadline.server.store.sqlite.store import SQLiteStore

COMMON = "user-common"
# Users between: (name, modulus, residue) of the sessions' rowids made theirs, odd ones
# (the common user's are even), about 1 %, 3 % and 10 % of the sessions.
BETWEEN = (("user-1pct", 100, 1), ("user-3pct", 30, 3), ("user-10pct", 10, 5))
# A common user whose sessions are all the oldest (``--old-user``): the walk's weak case.
OLD = "user-old"


def make_old_user(store: SQLiteStore, project: int, sessions: int) -> None:
    with store._read() as conn:
        if conn.execute(
            "SELECT 1 FROM traces WHERE project_id = ? AND user_id = ? LIMIT 1", (project, OLD)
        ).fetchone():
            return
    with store._transaction() as conn:
        conn.execute(
            "UPDATE traces SET user_id = ? WHERE project_id = ? AND session_id IN"
            " (SELECT session_id FROM sessions WHERE project_id = ? ORDER BY end_ns LIMIT ?)",
            (OLD, project, project, sessions),
        )


def make_common_user(store: SQLiteStore, project: int, every: int) -> None:
    with store._read() as conn:
        if conn.execute(
            "SELECT 1 FROM traces WHERE project_id = ? AND user_id = ? LIMIT 1", (project, COMMON)
        ).fetchone():
            return
    with store._transaction() as conn:
        conn.execute(
            "UPDATE traces SET user_id = ? WHERE project_id = ? AND session_id IN"
            " (SELECT session_id FROM sessions WHERE project_id = ? AND rowid % ? = 0)",
            (COMMON, project, project, every),
        )
        for user, modulus, residue in BETWEEN:
            conn.execute(
                "UPDATE traces SET user_id = ? WHERE project_id = ? AND session_id IN"
                " (SELECT session_id FROM sessions WHERE project_id = ? AND rowid % ? = ?)",
                (user, project, project, modulus, residue),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--common-every", type=int, default=2)
    parser.add_argument("--rare", default="user-1398")
    parser.add_argument(
        "--force",
        choices=("rare", "between", "common"),
        help="take this form for every user (a tree with user_sessions.py)",
    )
    parser.add_argument("--sorts", default="last_activity,start,cost")
    parser.add_argument(
        "--old-user",
        type=int,
        default=0,
        help="also make user-old of this many of the oldest sessions, and read it alone",
    )
    args = parser.parse_args()
    if args.force:
        from threadline.server.store.sqlite import user_sessions

        never, always = (0.0, 10**12, 10**12), (0.0, 1, 1)
        user_sessions._RARE = never if args.force == "rare" else always
        user_sessions._COMMON = always if args.force == "common" else never
        if args.force == "common":  # walked, whatever the user's latest trace
            user_sessions._late = lambda *_: False
    users = (args.rare, *(user for user, _, _ in BETWEEN), COMMON)
    store = SQLiteStore(args.db)
    try:
        project = max(store.list_projects(), key=lambda p: p.id).id
        make_common_user(store, project, args.common_every)
        if args.old_user:
            make_old_user(store, project, args.old_user)
            users = (OLD,)
        with store._read() as conn:
            end_ns = conn.execute(
                "SELECT max(end_ns) FROM sessions WHERE project_id = ?", (project,)
            ).fetchone()[0]
            counts = {
                user: conn.execute(
                    "SELECT count(DISTINCT session_id) FROM traces"
                    " WHERE project_id = ? AND user_id = ?",
                    (project, user),
                ).fetchone()[0]
                for user in users
            }
        end = datetime.fromtimestamp(end_ns / 1e9, UTC)
        windows = {"all time": (None, None), "a day": (end - timedelta(days=1), end)}
        print("sessions:", ", ".join(f"{user} {count}" for user, count in counts.items()))
        for user in users:
            for sort in args.sorts.split(","):
                for window, (start, stop) in windows.items():
                    query = SessionQuery(user_id=user, sort=sort, start=start, end=stop)
                    took = []
                    for _ in range(args.repeat):
                        began = time.thread_time()
                        page = store.list_sessions(project, query)
                        took.append((time.thread_time() - began) * 1000)
                    items = page.items
                    if page.next_cursor:
                        items += store.list_sessions(
                            project, query.model_copy(update={"cursor": page.next_cursor})
                        ).items
                    ids = [s.session_id for s in items]
                    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:10]
                    print(
                        f"{user:12} {sort:13} {window:8} {statistics.median(took):8.2f} ms"
                        f"  ({len(ids)} listed, {digest})"
                    )
    finally:
        store.close()


if __name__ == "__main__":
    main()
