"""Each trace's integer key in the SQLite store (migration 0018), minted when the trace
is first seen, in the write transaction, before its spans go in.

Keys grow as traces arrive, so the B-trees keyed by them (the spans' uniqueness
``(trace_key, span_id)``, the live feed's one row per trace, the search index's
documents, whose rowids are ``key << 20`` plus a number) take a new trace at their right
edge, whose pages the writer's cache holds. ``trace_keys_identity`` (project, trace id)
is the one lookup keyed by the random trace id; reads by trace id go through it, with
the subqueries below. The ``traces`` table's rowid is the key (migration 0019).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from threadline.server.store.sqlite.chunked import execute_in, select_in
from threadline.server.store.sqlite.driver import sqlite3


def key_of(trace_id: str) -> str:
    """The key of the trace whose id is the SQL expression ``trace_id`` (``?``: the
    project), as a subquery: a join finds a ``traces`` row by it (``traces.trace_key =
    key_of("found.value")``), its rowid."""
    return f"(SELECT key FROM trace_keys WHERE project_id = ? AND trace_id = {trace_id})"


# The key of one trace (``?``: the project, the trace id), and the keys of the traces
# whose ids fill the ``{}`` (``?``: the project first), as subqueries.
KEY_OF = key_of("?")
KEYS_OF = "(SELECT key FROM trace_keys WHERE project_id = ? AND trace_id IN ({}))"


@dataclass(frozen=True)
class Minted:
    """The keys of a batch's traces, and which of them were new to the store."""

    keys: dict[str, int]
    new: frozenset[str]


def mint(
    conn: sqlite3.Connection,
    project_id: int,
    trace_ids: Sequence[str],
    indexed: Container[str] = (),
) -> Minted:
    """The key of each trace, a new one for each trace the store has not seen. A new
    trace in ``indexed`` (the batch brings its search document, numbered 0) is inserted
    with one document numbered, so that the index need not count it in another write."""
    keys: dict[str, int] = dict(
        select_in(
            conn,
            "SELECT trace_id, key FROM trace_keys WHERE project_id = ? AND trace_id IN ({})",
            (project_id,),
            trace_ids,
        )
    )
    new = [trace_id for trace_id in trace_ids if trace_id not in keys]
    for trace_id in new:
        key = conn.execute(
            "INSERT INTO trace_keys (project_id, trace_id, numbered) VALUES (?, ?, ?)",
            (project_id, trace_id, 1 if trace_id in indexed else 0),
        ).lastrowid
        assert key is not None  # set by every INSERT
        keys[trace_id] = key
    return Minted(keys, frozenset(new))


def forget(conn: sqlite3.Connection, project_id: int, trace_ids: Sequence[str]) -> None:
    """Drop the keys of deleted traces: the last thing their deletion does, as the
    others find the traces' rows by their keys."""
    execute_in(
        conn,
        "DELETE FROM trace_keys WHERE project_id = ? AND trace_id IN ({})",
        (project_id,),
        trace_ids,
    )
