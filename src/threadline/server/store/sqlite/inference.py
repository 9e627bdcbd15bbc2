"""Sessions inferred, in the write transaction, for traces that carry no session id.

Ingest gives each span without a session id the keys its trace offers and asks for
(``ingest/session_signals.py``). In a batch's write transaction, before its rollups,
``place`` keeps those keys (table ``conversation_keys``, looked up by key through its
primary key) and links each such trace of the batch to the stored traces that offer
what it asks and that ask what it offers: whichever turn arrives first, the one
arriving second finds it. Linked traces form one session; a trace linked to nothing
stays without one until a later turn asks for it. ``place`` answers which session each
trace of the batch is in (its rollup takes it, when its spans name none) and which
sessions must be rolled up again from their traces; the store's rollup refresh does
the rest, as for sessions whose id was sent: a next turn is added to its session's
rollup (``merge_session``), anything else is recounted (``store/rollups.py``).

- **One id, whatever the order.** A session is named after its earliest trace (start
  time, then trace id): ``inferred-<trace id>``. When a turn arrives that starts
  earlier, or links two sessions found so far, every trace of them moves to the name of
  the earliest, and the session is recounted.
- **Explicit ids win.** Only traces whose rollup has no session id take part; a trace
  that later gets one (a late span carrying it) leaves its inferred session (the
  rollup refresh recounts the session it left), and lookups ignore its keys.
- **Late spans.** A trace's rollup is recomputed from its spans, which carry no session
  id; its placement (``inferred_traces``) puts it back into its inferred session.
- **A project may turn it off** (``session_inference``): traces then stay without a
  session; sessions inferred before stay as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from threadline.server.model import SIGNALS, Signal, SpanRecord
from threadline.server.store.rollups import TraceRollup
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.trace_keys import KEY_OF, KEYS_OF

INFERRED_PREFIX = "inferred-"
# ``conversation_keys.role``: 0 for an offered key, else the signal of an asked one.
_OFFER = 0
_ASK_ROLE: dict[Signal, int] = {signal: i + 1 for i, signal in enumerate(SIGNALS)}
_ROLE_SIGNAL: dict[int, Signal] = {role: signal for signal, role in _ASK_ROLE.items()}


@dataclass
class Placement:
    """What inference decided for a batch: the inferred session of each of its traces
    placed in one, and the sessions to roll up again from their traces (renamed, merged,
    or grown by a trace stored before)."""

    sessions: dict[str, str] = field(default_factory=dict)
    recount: set[str] = field(default_factory=set)

    def fill(self, rollups: Iterable[TraceRollup]) -> None:
        """Give each rollup without a session id its inferred session, if it has one."""
        for rollup in rollups:
            if rollup.session_id is None:
                rollup.session_id = self.sessions.get(rollup.trace_id)


# A trace as inference sees it: its inferred session (None: in none yet) and its start.
_Trace = tuple[str | None, int]


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
    for session_id, signals in select_in(
        conn,
        "SELECT session_id, signals FROM inferred_sessions"
        " WHERE project_id = ? AND session_id IN ({})",
        (project_id,),
        list(dict.fromkeys(session_ids)),
    ):
        found[session_id] = _signal_list(signals)
    return found


class _Keys:
    """The keys the batch's traces offer and ask for."""

    def __init__(self, spans: Sequence[SpanRecord], traces: Iterable[str]) -> None:
        wanted = set(traces)
        self.offers: dict[str, set[bytes]] = defaultdict(set)
        self.asks: dict[str, dict[bytes, Signal]] = defaultdict(dict)
        for span in spans:
            signals = span.session_signals
            if signals is None or span.trace_id not in wanted:
                continue
            if signals.offers:
                self.offers[span.trace_id].update(signals.offers)
            for key, signal in signals.asks:
                self.asks[span.trace_id].setdefault(key, signal)

    def traces(self) -> list[str]:
        return sorted(self.offers.keys() | self.asks.keys())


def place(
    conn: sqlite3.Connection,
    project_id: int,
    spans: Sequence[SpanRecord],
    rollups: Mapping[str, TraceRollup],
) -> Placement:
    """Place the batch's traces without a session id (``rollups``: each trace of the
    batch rolled up from its spans in the batch) in inferred sessions, and set the
    session of those rollups; called in the batch's write transaction, before the
    rollups are written."""
    placement = Placement()
    candidates = sorted(t for t, r in rollups.items() if r.session_id is None)
    if not candidates:
        return placement
    stored = _stored(conn, project_id, candidates)
    traces: dict[str, _Trace] = {}
    for trace_id in candidates:
        start = rollups[trace_id].start_ns
        if trace_id not in stored:
            traces[trace_id] = (None, start)
            continue
        session_id, stored_start, placed = stored[trace_id]
        if session_id is not None and session_id != placed:
            continue  # a session id sent with an earlier span
        traces[trace_id] = (placed, min(start, stored_start))
        if placed:
            placement.sessions[trace_id] = placed  # a late span: back into its session
    keys = _Keys(spans, traces)
    keyed = keys.traces()
    if keyed and enabled(conn, project_id):
        _link(conn, project_id, keys, keyed, traces, placement)
    placement.fill(rollups[t] for t in candidates)
    return placement


def _link(
    conn: sqlite3.Connection,
    project_id: int,
    keys: _Keys,
    keyed: list[str],
    traces: dict[str, _Trace],
    placement: Placement,
) -> None:
    # Offers are kept for the later turns that will ask for them; an ask is kept only
    # while nothing answers it (a turn that arrived before the one it continues), for
    # that turn to find when it lands. In order, asks are answered at once: the table
    # of open asks stays small, and the lookup of offers in it cheap.
    conn.executemany(
        "INSERT OR IGNORE INTO conversation_keys (project_id, role, key, trace_id)"
        " VALUES (?, 0, ?, ?)",
        [(project_id, key, t) for t in keyed for key in keys.offers.get(t, ())],
    )
    # Edges (asker, offerer, signal, key), batch traces on either side; a trace found
    # by a key may be in this batch too (its offers were just written).
    edges: list[tuple[str, str, Signal, bytes]] = []
    asked = sorted({key for t in keyed for key in keys.asks.get(t, ())})
    offerers: dict[bytes, list[str]] = defaultdict(list)
    for key, other in select_in(
        conn,
        "SELECT key, trace_id FROM conversation_keys"
        " WHERE project_id = ? AND role = 0 AND key IN ({})",
        (project_id,),
        asked,
    ):
        offerers[key].append(other)
    for t in keyed:
        for key, signal in keys.asks.get(t, {}).items():
            edges += [(t, other, signal, key) for other in offerers.get(key, ()) if other != t]
    offered_by: dict[bytes, list[str]] = defaultdict(list)
    for t in keyed:
        for key in keys.offers.get(t, ()):
            offered_by[key].append(t)
    ask_roles = ", ".join(str(role) for role in _ROLE_SIGNAL)
    reverse: list[tuple[str, str, Signal, bytes]] = []  # open asks of earlier batches
    for role, key, asker in select_in(
        conn,
        "SELECT role, key, trace_id FROM conversation_keys"
        f" WHERE project_id = ? AND role IN ({ask_roles}) AND key IN ({{}})",
        (project_id,),
        sorted(offered_by),
    ):
        found = [(asker, t, _ROLE_SIGNAL[role], key) for t in offered_by[key] if t != asker]
        edges += found
        reverse += found
    # Where each other trace at an edge is: its inferred session, or none yet. Traces
    # that left inference (an explicit id, or deleted) are not found, nor their edges.
    batch = set(traces)
    others = sorted({t for edge in edges for t in edge[:2]} - batch)
    for t, (session_id, start, placed) in _stored(conn, project_id, others).items():
        if session_id is None or session_id == placed:
            traces[t] = (placed, start)
    edges = [edge for edge in edges if edge[0] in traces and edge[1] in traces]
    answered = {(asker, key) for asker, _, _, key in edges}
    # Open asks answered now are closed; the batch's unanswered asks are opened.
    conn.executemany(
        "DELETE FROM conversation_keys"
        " WHERE project_id = ? AND role = ? AND key = ? AND trace_id = ?",
        [
            (project_id, _ASK_ROLE[signal], key, asker)
            for asker, _, signal, key in reverse
            if asker in traces and (asker, key) in answered
        ],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO conversation_keys (project_id, role, key, trace_id)"
        " VALUES (?, ?, ?, ?)",
        [
            (project_id, _ASK_ROLE[signal], key, t)
            for t in keyed
            for key, signal in keys.asks.get(t, {}).items()
            if (t, key) not in answered
        ],
    )
    if not edges:
        return
    groups = _Groups()
    for asker, offerer, _, _ in edges:
        groups.union(_node(asker, traces), _node(offerer, traces))
    components: dict[str, list[tuple[str, str, Signal]]] = defaultdict(list)
    for asker, offerer, signal, _ in edges:
        components[groups.find(_node(asker, traces))].append((asker, offerer, signal))
    _Joins(conn, project_id, traces, batch, placement).join(list(components.values()))


class _Joins:
    """Linked traces and sessions made one session each, the writes batched."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        project_id: int,
        traces: dict[str, _Trace],
        batch: set[str],
        placement: Placement,
    ) -> None:
        self.conn = conn
        self.project_id = project_id
        self.traces = traces
        self.batch = batch
        self.placement = placement

    def join(self, components: list[list[tuple[str, str, Signal]]]) -> None:
        conn, project_id, traces = self.conn, self.project_id, self.traces
        sessions_of = [
            sorted({s for edge in edges for t in edge[:2] if (s := traces[t][0])})
            for edges in components
        ]
        stored: dict[str, tuple[int, str, list[Signal]]] = {
            session_id: (root_start_ns, root_trace_id, _signal_list(signals))
            for session_id, root_start_ns, root_trace_id, signals in select_in(
                conn,
                "SELECT session_id, root_start_ns, root_trace_id, signals FROM inferred_sessions"
                " WHERE project_id = ? AND session_id IN ({})",
                (project_id,),
                sorted({s for sessions in sessions_of for s in sessions}),
            )
        }
        placed: list[tuple[str, str, Signal | None]] = []  # (trace, session, signal)
        renamed: list[tuple[str, str]] = []  # (old session, new)
        roots: list[tuple[str, int, str, str]] = []  # (session, start, trace, signals)
        for edges, sessions in zip(components, sessions_of, strict=True):
            loose = sorted({t for edge in edges for t in edge[:2] if traces[t][0] is None})
            known = [stored[s] for s in sessions if s in stored]
            root_start, root_trace = min(
                [(start, root) for start, root, _ in known] + [(traces[t][1], t) for t in loose]
            )
            target = INFERRED_PREFIX + root_trace
            signals = {signal for _, _, signal in edges}
            for _, _, kept in known:
                signals.update(kept)
            unchanged = target in stored and signals <= set(stored[target][2])
            if not loose and sessions == [target] and unchanged:
                continue  # the edges run inside one session, and add nothing
            renamed += [(s, target) for s in sessions if s != target]
            # A loose trace joined by asking names the signal it asked by; one only asked
            # for (the first turn, or an earlier turn arriving late) joined by none.
            joined_by: dict[str, Signal] = {}
            for asker, _, signal in edges:
                if traces[asker][0] is None:
                    joined_by.setdefault(asker, signal)
            placed += [(t, target, joined_by.get(t)) for t in loose]
            roots.append((target, root_start, root_trace, _signal_text(signals)))
            for t in loose:
                self.traces[t] = (target, traces[t][1])
        self._rename(renamed)
        conn.executemany(
            "INSERT OR REPLACE INTO inferred_traces (project_id, trace_id, session_id, signal)"
            " VALUES (?, ?, ?, ?)",
            [(project_id, t, session_id, signal) for t, session_id, signal in placed],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO inferred_sessions"
            " (project_id, session_id, root_start_ns, root_trace_id, signals)"
            " VALUES (?, ?, ?, ?, ?)",
            [(project_id, *root) for root in roots],
        )
        # The batch's traces take their session with their rollups; traces of earlier
        # batches that were in no session yet change here, and their session is rolled
        # up from all of its traces.
        moved = []
        for t, session_id, _ in placed:
            if t in self.batch:
                self.placement.sessions[t] = session_id
            else:
                moved.append((session_id, t))
        self._set_rows(moved)
        self.placement.recount.update(session_id for session_id, _ in moved)

    def _rename(self, renamed: list[tuple[str, str]]) -> None:
        """Move every trace of each old session to the new one."""
        conn, project_id = self.conn, self.project_id
        for old, new in renamed:
            members = [
                row[0]
                for row in conn.execute(
                    "SELECT trace_id FROM inferred_traces WHERE project_id = ? AND session_id = ?",
                    (project_id, old),
                )
            ]
            conn.execute(
                "UPDATE inferred_traces SET session_id = ? WHERE project_id = ? AND session_id = ?",
                (new, project_id, old),
            )
            conn.execute(
                "DELETE FROM inferred_sessions WHERE project_id = ? AND session_id = ?",
                (project_id, old),
            )
            self._set_rows([(new, t) for t in members], only_from=old)
            for t in members:
                if t in self.traces:
                    self.traces[t] = (new, self.traces[t][1])
                if t in self.placement.sessions:
                    self.placement.sessions[t] = new
            # The old session is left with no trace: recounting deletes its row.
            self.placement.recount.update((old, new))

    def _set_rows(self, moves: list[tuple[str, str]], only_from: str | None = None) -> None:
        """Give stored traces (session id, trace id) their session, in the rollup and the
        live feed; with ``only_from``, only those still in that session."""
        condition = "session_id = ?" if only_from is not None else "session_id IS NULL"
        self.conn.executemany(
            f"UPDATE traces SET session_id = ? WHERE trace_key = {KEY_OF} AND {condition}",
            [
                (session_id, self.project_id, t, *((only_from,) if only_from else ()))
                for session_id, t in moves
            ],
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO trace_feed (project_id, trace_id, trace_key)"
            f" VALUES (?, ?, {KEY_OF})",
            [(self.project_id, t, self.project_id, t) for _, t in moves],
        )


def _stored(
    conn: sqlite3.Connection, project_id: int, trace_ids: list[str]
) -> dict[str, tuple[str | None, int, str | None]]:
    """Each stored trace of ``trace_ids``: (its session id, start, its inferred session)."""
    return {
        trace_id: (session_id, start_ns, inferred_session_id)
        for trace_id, session_id, start_ns, inferred_session_id in select_in(
            conn,
            "SELECT t.trace_id, t.session_id, t.start_ns, i.session_id FROM traces t"
            " LEFT JOIN inferred_traces i"
            " ON i.project_id = t.project_id AND i.trace_id = t.trace_id"
            f" WHERE t.trace_key IN {KEYS_OF}",
            (project_id,),
            trace_ids,
        )
    }


def _node(trace_id: str, traces: dict[str, _Trace]) -> str:
    session_id = traces[trace_id][0]
    return "s:" + session_id if session_id else "t:" + trace_id


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


def _signal_text(signals: set[Signal]) -> str:
    return ",".join(s for s in SIGNALS if s in signals)
