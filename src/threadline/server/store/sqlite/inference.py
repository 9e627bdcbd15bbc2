"""Sessions inferred, in the write transaction, for traces that carry no session id.

Ingest gives each span without a session id the keys its trace offers and asks for
(``ingest/session_signals.py``). After a batch's rollups are written, ``place`` keeps
those keys (table ``conversation_keys``, looked up by key through its primary key) and
links each such trace of the batch to the stored traces that offer what it asks and
that ask what it offers: whichever turn arrives first, the one arriving second finds
it. Linked traces form one session; a trace linked to nothing stays without one until
a later turn asks for it.

- **One id, whatever the order.** A session is named after its earliest trace (start
  time, then trace id): ``inferred-<trace id>``. When a turn arrives that starts
  earlier, or links two sessions found so far, every trace of them moves to the name of
  the earliest, and the session is rolled up again from its traces, so the totals are
  those of explicit sessions (``store/rollups.py``).
- **Explicit ids win.** Only traces whose rollup has no session id take part; a trace
  that later gets one (a late span carrying it) leaves its inferred session (the
  store's rollup refresh recounts the session it left), and lookups ignore its keys.
- **Late spans.** A trace's rollup is recomputed from its spans, which carry no session
  id, so a late span of an inferred trace puts it back into its inferred session here.
- **A project may turn it off** (``session_inference``): traces then stay without a
  session; sessions inferred before stay as they are.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence

from threadline.server.model import SIGNALS, Signal, SpanRecord
from threadline.server.store import rows as table_rows
from threadline.server.store.rollups import (
    SessionRollup,
    TraceRollup,
    merge_session,
    roll_up_session,
)
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.chunked import select_in

INFERRED_PREFIX = "inferred-"
# ``conversation_keys.role``: 0 for an offered key, else the signal of an asked one.
_OFFER = 0
_ASK_ROLE: dict[Signal, int] = {signal: i + 1 for i, signal in enumerate(SIGNALS)}
_ROLE_SIGNAL: dict[int, Signal] = {role: signal for signal, role in _ASK_ROLE.items()}


def enabled(conn: sqlite3.Connection, project_id: int) -> bool:
    row = conn.execute(
        "SELECT enabled FROM session_inference WHERE project_id = ?", (project_id,)
    ).fetchone()
    return True if row is None else bool(row[0])


def set_enabled(conn: sqlite3.Connection, project_id: int, on: bool) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO session_inference (project_id, enabled) VALUES (?, ?)",
        (project_id, int(on)),
    )


def signals_of(
    conn: sqlite3.Connection, project_id: int, session_ids: Sequence[str]
) -> dict[str, list[Signal]]:
    """The signals that grouped each of ``session_ids`` that is inferred."""
    found: dict[str, list[Signal]] = {}
    for row in select_in(
        conn,
        "SELECT session_id, signals FROM inferred_sessions"
        " WHERE project_id = ? AND session_id IN ({})",
        (project_id,),
        list(dict.fromkeys(session_ids)),
    ):
        found[row[0]] = _signal_list(row[1])
    return found


class _Keys:
    """The keys the batch's traces offer and ask for."""

    def __init__(self) -> None:
        self.offers: dict[str, set[bytes]] = defaultdict(set)
        self.asks: dict[str, dict[bytes, Signal]] = defaultdict(dict)

    def add(self, span: SpanRecord) -> None:
        signals = span.session_signals
        if signals is None:
            return
        if signals.offers:
            self.offers[span.trace_id].update(signals.offers)
        for key, signal in signals.asks:
            self.asks[span.trace_id].setdefault(key, signal)


def place(conn: sqlite3.Connection, project_id: int, spans: Sequence[SpanRecord]) -> None:
    """Place the batch's traces without a session id in inferred sessions (see the
    module's docstring); called in the batch's write transaction, after its rollups."""
    # A trace with a span of the batch carrying a session id has that session.
    explicit = {span.trace_id for span in spans if span.session_id is not None}
    keys = _Keys()
    candidates: set[str] = set()
    for span in spans:
        if span.trace_id not in explicit:
            candidates.add(span.trace_id)
            keys.add(span)
    if not candidates:
        return
    batch = _traces(conn, project_id, sorted(candidates))
    # Late spans of placed traces: back into their sessions.
    recount: set[str] = set()
    restored = [(placed, tid) for tid, (sid, _, placed) in batch.items() if sid is None and placed]
    if restored:
        _set_session(conn, project_id, restored)
        recount.update(placed for placed, _ in restored)
    keyed = [tid for tid in batch if tid in keys.offers or tid in keys.asks]
    if keyed and enabled(conn, project_id):
        _link(conn, project_id, keys, keyed, batch, recount)
    if recount:
        _recount(conn, project_id, recount)


def _link(
    conn: sqlite3.Connection,
    project_id: int,
    keys: _Keys,
    keyed: list[str],
    batch: dict[str, tuple[str | None, int, str | None]],
    recount: set[str],
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO conversation_keys (project_id, role, key, trace_id)"
        " VALUES (?, ?, ?, ?)",
        [
            *((project_id, _OFFER, key, tid) for tid in keyed for key in keys.offers.get(tid, ())),
            *(
                (project_id, _ASK_ROLE[signal], key, tid)
                for tid in keyed
                for key, signal in keys.asks.get(tid, {}).items()
            ),
        ],
    )
    # Edges (asker, offerer, signal), batch traces on either side; a trace found by a
    # key may be in this batch too (its keys were just written).
    edges: list[tuple[str, str, Signal]] = []
    asked = sorted({key for tid in keyed for key in keys.asks.get(tid, ())})
    offered = sorted({key for tid in keyed for key in keys.offers.get(tid, ())})
    offerers: dict[bytes, list[str]] = defaultdict(list)
    for key, tid in select_in(
        conn,
        "SELECT key, trace_id FROM conversation_keys"
        " WHERE project_id = ? AND role = 0 AND key IN ({})",
        (project_id,),
        asked,
    ):
        offerers[key].append(tid)
    for tid in keyed:
        for key, signal in keys.asks.get(tid, {}).items():
            edges += [(tid, other, signal) for other in offerers.get(key, ()) if other != tid]
    ask_roles = ", ".join(str(role) for role in _ROLE_SIGNAL)
    offered_by: dict[bytes, list[str]] = defaultdict(list)
    for tid in keyed:
        for key in keys.offers.get(tid, ()):
            offered_by[key].append(tid)
    for role, key, asker in select_in(
        conn,
        "SELECT role, key, trace_id FROM conversation_keys"
        f" WHERE project_id = ? AND role IN ({ask_roles}) AND key IN ({{}})",
        (project_id,),
        offered,
    ):
        edges += [(asker, tid, _ROLE_SIGNAL[role]) for tid in offered_by[key] if tid != asker]
    if not edges:
        return
    # Where each trace at an edge is now: its inferred session, or none yet.
    traces = dict(batch)
    others = sorted({t for edge in edges for t in edge[:2]} - traces.keys())
    traces.update(_traces(conn, project_id, others))
    # Traces that left inference (an explicit id, or deleted) are not in ``traces``.
    edges = [edge for edge in edges if edge[0] in traces and edge[1] in traces]
    groups = _Groups()
    for asker, offerer, _ in edges:
        groups.union(_node(asker, traces), _node(offerer, traces))
    components: dict[str, list[tuple[str, str, Signal]]] = defaultdict(list)
    for edge in edges:
        components[groups.find(_node(edge[0], traces))].append(edge)
    for component in components.values():
        _join(conn, project_id, component, traces, recount)


def _join(
    conn: sqlite3.Connection,
    project_id: int,
    edges: list[tuple[str, str, Signal]],
    traces: dict[str, tuple[str | None, int, str | None]],
    recount: set[str],
) -> None:
    """Make the traces and sessions linked by ``edges`` one session."""
    sessions = sorted({s for edge in edges for t in edge[:2] if (s := traces[t][2])})
    loose = sorted({t for edge in edges for t in edge[:2] if traces[t][2] is None})
    stored: dict[str, tuple[int, str, list[Signal]]] = {}
    for row in select_in(
        conn,
        "SELECT session_id, root_start_ns, root_trace_id, signals FROM inferred_sessions"
        " WHERE project_id = ? AND session_id IN ({})",
        (project_id,),
        sessions,
    ):
        stored[row[0]] = (row[1], row[2], _signal_list(row[3]))
    roots = [(start, root) for start, root, _ in stored.values()]
    roots += [(traces[t][1], t) for t in loose]
    root_start, root_trace = min(roots)
    target = INFERRED_PREFIX + root_trace
    signals = {signal for _, _, signal in edges}
    for _, _, kept in stored.values():
        signals.update(kept)
    if not loose and sessions == [target] and signals <= set(stored[target][2]):
        return  # nothing new: the edges run inside one session
    merged_away = [sid for sid in sessions if sid != target]
    for sid in merged_away:
        conn.execute(
            "UPDATE traces SET session_id = ? WHERE project_id = ? AND trace_id IN"
            " (SELECT trace_id FROM inferred_traces WHERE project_id = ? AND session_id = ?)"
            " AND session_id = ?",
            (target, project_id, project_id, sid, sid),
        )
        conn.execute(
            "INSERT OR REPLACE INTO trace_feed (project_id, trace_id)"
            " SELECT project_id, trace_id FROM inferred_traces"
            " WHERE project_id = ? AND session_id = ?",
            (project_id, sid),
        )
        conn.execute(
            "UPDATE inferred_traces SET session_id = ? WHERE project_id = ? AND session_id = ?",
            (target, project_id, sid),
        )
        conn.execute(
            "DELETE FROM inferred_sessions WHERE project_id = ? AND session_id = ?",
            (project_id, sid),
        )
        conn.execute(
            "DELETE FROM sessions WHERE project_id = ? AND session_id = ?", (project_id, sid)
        )
    # A loose trace joined by asking names the signal it asked by; one only asked for
    # (the first turn, or an earlier turn arriving late) joined by none of its own.
    joined_by: dict[str, Signal] = {}
    for asker, _, signal in edges:
        if traces[asker][2] is None:
            joined_by.setdefault(asker, signal)
    conn.executemany(
        "INSERT OR REPLACE INTO inferred_traces (project_id, trace_id, session_id, signal)"
        " VALUES (?, ?, ?, ?)",
        [(project_id, t, target, joined_by.get(t)) for t in loose],
    )
    _set_session(conn, project_id, [(target, t) for t in loose])
    conn.execute(
        "INSERT OR REPLACE INTO inferred_sessions"
        " (project_id, session_id, root_start_ns, root_trace_id, signals) VALUES (?, ?, ?, ?, ?)",
        (project_id, target, root_start, root_trace, ",".join(s for s in SIGNALS if s in signals)),
    )
    for t in loose:
        traces[t] = (target, traces[t][1], target)
    # Merged sessions and late spans need all traces read; next turns are added.
    must_recount = merged_away or target in recount
    if must_recount or (loose and not _merged(conn, project_id, target, loose)):
        recount.add(target)
    recount.difference_update(merged_away)


def _merged(conn: sqlite3.Connection, project_id: int, target: str, added: list[str]) -> bool:
    """Add the traces ``added`` to the stored rollup of ``target`` when they are its next
    turns (``merge_session``); False when the session must be rolled up again."""
    row = conn.execute(
        schema.SELECT_SESSIONS + " AND session_id = ?", (project_id, target)
    ).fetchone()
    rollups = [
        table_rows.trace_rollup(r)
        for r in select_in(
            conn, schema.SELECT_TRACES + " AND trace_id IN ({})", (project_id,), added
        )
    ]
    merged: SessionRollup | None = (
        roll_up_session(target, rollups)
        if row is None
        else merge_session(table_rows.session_rollup(row), rollups)
    )
    if merged is None:
        return False
    conn.execute(schema.UPSERT_SESSION, schema.session_row(project_id, merged))
    return True


def _recount(conn: sqlite3.Connection, project_id: int, session_ids: set[str]) -> None:
    """Roll the sessions up again from all of their traces (none left: no row)."""
    by_session: dict[str, list[TraceRollup]] = defaultdict(list)
    for row in select_in(
        conn, schema.SELECT_TRACES + " AND session_id IN ({})", (project_id,), sorted(session_ids)
    ):
        rollup = table_rows.trace_rollup(row)
        by_session[rollup.session_id or ""].append(rollup)
    conn.executemany(
        schema.UPSERT_SESSION,
        [
            schema.session_row(project_id, roll_up_session(sid, traces))
            for sid, traces in by_session.items()
        ],
    )
    conn.executemany(
        "DELETE FROM sessions WHERE project_id = ? AND session_id = ?",
        [(project_id, sid) for sid in session_ids - by_session.keys()],
    )


def _traces(
    conn: sqlite3.Connection, project_id: int, trace_ids: list[str]
) -> dict[str, tuple[str | None, int, str | None]]:
    """For each stored trace of ``trace_ids`` that inference may place (no session id,
    or the one inference gave it): (its session id, start, its inferred session)."""
    found: dict[str, tuple[str | None, int, str | None]] = {}
    for tid, sid, start, placed in select_in(
        conn,
        "SELECT t.trace_id, t.session_id, t.start_ns, i.session_id FROM traces t"
        " LEFT JOIN inferred_traces i ON i.project_id = t.project_id AND i.trace_id = t.trace_id"
        " WHERE t.project_id = ? AND t.trace_id IN ({})",
        (project_id,),
        trace_ids,
    ):
        if sid is None or sid == placed:
            found[tid] = (sid, start, placed)
    return found


def _set_session(conn: sqlite3.Connection, project_id: int, moves: list[tuple[str, str]]) -> None:
    """Give traces (session id, trace id) their session, in the rollup and the live feed."""
    conn.executemany(
        "UPDATE traces SET session_id = ? WHERE project_id = ? AND trace_id = ?",
        [(sid, project_id, tid) for sid, tid in moves],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO trace_feed (project_id, trace_id) VALUES (?, ?)",
        [(project_id, tid) for _, tid in moves],
    )


def _node(trace_id: str, traces: dict[str, tuple[str | None, int, str | None]]) -> str:
    placed = traces[trace_id][2]
    return "s:" + placed if placed else "t:" + trace_id


class _Groups:
    """Union-find over nodes (a session, or a trace in none)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self._parent.setdefault(node, node)
        while parent != node:
            grand = self._parent[parent]
            self._parent[node] = grand
            node, parent = parent, grand
        return node

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)


def _signal_list(text: str) -> list[Signal]:
    return [s for s in SIGNALS if s in text.split(",")]
