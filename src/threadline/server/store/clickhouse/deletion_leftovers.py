"""What else names a deleted trace or session in ClickHouse, removed with it (as in
SQLite's ``deletion_leftovers.py``): the evaluation runs that judged a deleted trace or
a session that is gone, the share links to either, the response ids that named an
inferred session that is gone (its signals are in its name), and the values their
scores had in the score sorts' tables. A session that keeps some traces keeps its own
runs and links and its response ids (they name the session, which is still there);
``evaluation_totals`` keeps what the judge did and cost.

Each is a lightweight ``DELETE`` of every version of the rows, so a link revoked
earlier (a second row) goes as a whole."""

from __future__ import annotations

from collections.abc import Callable, Sequence

# (table, condition on the ids: "<column> IN %(ids)s" and more, ids): deletes in the
# project the rows the condition picks.
DeleteWhere = Callable[[str, str, Sequence[str]], None]


def forget(delete: DeleteWhere, trace_ids: Sequence[str], sessions_gone: Sequence[str]) -> None:
    delete("evaluation_runs", "session_id IN %(ids)s", sessions_gone)
    delete("evaluation_runs", "target_kind = 'trace' AND target_id IN %(ids)s", trace_ids)
    delete("evaluation_queue", "session_id IN %(ids)s", sessions_gone)
    delete("evaluation_queue", "target_kind = 'trace' AND target_id IN %(ids)s", trace_ids)
    delete("share_links", "kind = 'session' AND target_id IN %(ids)s", sessions_gone)
    delete("share_links", "kind = 'trace' AND target_id IN %(ids)s", trace_ids)
    delete("response_sessions", "session_id IN %(ids)s", sessions_gone)
    # Their scores' old values, kept for the score sorts (migration 0024): the rollups
    # they counted in are emptied, and these rows would keep the values.
    for table in ("score_rollups_by_average", "score_rollups_by_label"):
        delete(table, "target_kind = 'session' AND target_id IN %(ids)s", sessions_gone)
        delete(table, "target_kind = 'trace' AND target_id IN %(ids)s", trace_ids)
