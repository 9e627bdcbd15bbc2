"""The sort orders of the lists, the same SQL for both backends, and the names their
cursors are made by (``cursors``: a cursor read by another list, sort or filter is a 400)."""

from __future__ import annotations

import json

from threadline.server.model import SessionQuery, TraceQuery

# What a Sessions or Traces cursor is bound to besides its list and sort: the filters
# and the search. Reused with others, it would start the other list after a row of this
# one, mid-list, skipping what came before: a 400 instead. The time window is not bound:
# "the last 7 days" moves with every request, and the next page must still read.
_FILTERS = {"session_id", "user_id", "q", "status", "tag", "metadata", "scores", "numbers"}
_FILTERS_OF_SESSIONS = _FILTERS | {"min_context_use"}

# Sort order -> (SQL expression, its cursor's type). On SQLite each has an index
# (migration 0002, which names the same expressions); an unknown cost sorts below
# every known one.
SESSION_SORTS: dict[str, tuple[str, type]] = {
    "last_activity": ("end_ns", int),
    "start": ("start_ns", int),
    "duration": ("(end_ns - start_ns)", int),
    "cost": ("COALESCE(cost_usd, -1.0)", float),
    "tokens": ("total_tokens", int),
    # A session with no known context window sorts below every other (SQLite:
    # migration 0011's index).
    "context": ("COALESCE(peak_context_use, -1.0)", float),
}


def filtered_by(query: SessionQuery | TraceQuery) -> str:
    """The filters and search of ``query``, as its cursors are bound to them."""
    names = _FILTERS_OF_SESSIONS if isinstance(query, SessionQuery) else _FILTERS
    fields = query.model_dump(mode="json", include=names)
    # The score and numeric filters all apply, in any order: the same ones given in
    # another order are the same list.
    for name in ("scores", "numbers"):
        fields[name] = sorted(fields[name], key=json.dumps)
    return "where " + json.dumps(fields, sort_keys=True, separators=(",", ":"))


def sessions_by(query: SessionQuery) -> str:
    """What the Sessions list of ``query`` is ordered and filtered by, as its cursors
    name it (``made_by``): ``relevance`` without a search is ``last_activity``."""
    sort = query.sort if query.sort != "relevance" or query.q else "last_activity"
    return f"sessions by {sort} {filtered_by(query)}"


def traces_by(query: TraceQuery) -> str:
    """What the Traces list of ``query`` is ordered and filtered by, as its cursors
    name it: ``relevance`` without a search is ``time``."""
    sort = "relevance" if query.sort == "relevance" and query.q else "time"
    return f"traces by {sort} {filtered_by(query)}"


USERS_BY_ACTIVITY = "users by last activity"
SCORES_BY_CREATION = "scores by creation"
RUNS_BY_CREATION = "evaluation runs by creation"
SHARES_BY_CREATION = "share links by creation"
