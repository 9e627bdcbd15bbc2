"""Session rollups written, with what they change in the dashboard's aggregates.

A session counts in ``metric_activity`` in the bucket of its first and last hour, with
whether it had an error and whether its cost is known (migration 0010). Rewriting a
session takes back what its old row added there and adds the new one. Until migration
0014 two triggers on ``sessions`` did that for every row written, two upserts each;
here the changes of all the sessions a write transaction rewrites are added up in
memory first (``metric_upkeep.Changes``, with the traces' changes of an ingest batch),
so a batch writes one row per bucket it changed: the sessions of live traffic are in a
handful of hours. A session deleted is still taken back by its trigger (0010), which
sees the row as SQLite deletes it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

from threadline.server.store.rollups import SessionRollup
from threadline.server.store.sqlite import metric_scores
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.metric_upkeep import HOUR_NS, SLACK_NS, Changes

# Each session looked up by its key, the ids' list first (``CROSS JOIN`` keeps that
# order). Written as ``session_id IN (...)``, the planner took the lists' index by
# activity instead, which holds every column read here, and read all of the project's
# entries in it for each batch: 26 ms a batch at 100k sessions against 0.06 by key
# (docs/benchmarks.md, round 15).
_STORED = (
    "SELECT s.session_id, s.start_ns, s.end_ns, s.error_count, s.cost_usd IS NOT NULL"
    " FROM json_each(?) AS wanted CROSS JOIN sessions AS s"
    " ON s.project_id = ? AND s.session_id = wanted.value"
)

# What a session adds to the aggregates: its first and last hour's bucket, whether it
# had an error, whether its cost is known.
_Counted = tuple[int, int, bool, bool]


def _counted(start_ns: int, end_ns: int, error_count: int, cost_known: bool) -> _Counted:
    return end_ns // HOUR_NS, (start_ns + SLACK_NS) // HOUR_NS, error_count > 0, cost_known


def write(
    conn: sqlite3.Connection,
    project_id: int,
    sessions: Sequence[SessionRollup],
    stored: Mapping[str, SessionRollup] | None = None,
    absent: Collection[str] = (),
    changes: Changes | None = None,
) -> None:
    """Write (insert or replace) the rollups of ``sessions`` (one each) and keep the
    aggregates.
    ``stored``: the rows of some of them as they are stored now, if the caller has
    read them already; ``absent``: those the caller found no row for (the others are
    read here); ``changes``: the batch's changes to the aggregates, to add to (the
    caller writes them), else they are written here."""
    if not sessions:
        return
    own = changes is None
    if changes is None:
        changes = Changes()
    keep_aggregates(conn, project_id, sessions, stored or {}, absent, changes)
    conn.executemany(schema.UPSERT_SESSION, [schema.session_row(project_id, s) for s in sessions])
    if own:
        changes.write(conn, project_id)


def keep_aggregates(
    conn: sqlite3.Connection,
    project_id: int,
    sessions: Sequence[SessionRollup],
    stored: Mapping[str, SessionRollup],
    absent: Collection[str],
    changes: Changes,
) -> None:
    """Take back in ``changes`` what the stored rows of ``sessions`` added to the
    aggregates and add what their new rollups add; called before they are written.
    ``stored``: rows read already; ``absent``: sessions known to have none."""
    before: dict[str, _Counted] = {
        r.session_id: _counted(r.start_ns, r.end_ns, r.error_count, r.cost_usd is not None)
        for r in stored.values()
    }
    unread = [
        s.session_id for s in sessions if s.session_id not in stored and s.session_id not in absent
    ]
    if unread:
        for session_id, start_ns, end_ns, error_count, cost_known in conn.execute(
            _STORED, (json.dumps(unread), project_id)
        ):
            before[session_id] = _counted(start_ns, end_ns, error_count, bool(cost_known))
    for session in sessions:
        old = before.get(session.session_id)
        new = _counted(
            session.start_ns, session.end_ns, session.error_count, session.cost_usd is not None
        )
        if old is None or old[:2] != new[:2]:
            # A session stored or started in another hour: its own scores follow it.
            changes.scored_targets[("session", session.session_id)] = metric_scores.hour_of(
                session.start_ns, session.end_ns
            )
            if old is not None:
                changes.moved_targets.add(("session", session.session_id))
        if old == new:
            continue  # counted in the same bucket, the same way
        if old is not None:  # a session new to the store takes nothing back
            changes.session(*old, -1)
        changes.session(*new, 1)
