"""The sort orders of the lists, the same SQL for both backends, and the names their
cursors are made by (``cursors``: a cursor read by another list or sort is a 400)."""

from __future__ import annotations

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


def sessions_by(sort: str, q: str | None) -> str:
    """What the Sessions list sorted by ``sort`` is ordered by, as its cursors name it
    (``made_by``): ``relevance`` without a search is ``last_activity``."""
    return f"sessions by {sort if sort != 'relevance' or q else 'last_activity'}"


def traces_by(sort: str, q: str | None) -> str:
    """What the Traces list sorted by ``sort`` is ordered by, as its cursors name it:
    ``relevance`` without a search is ``time``."""
    return f"traces by {'relevance' if sort == 'relevance' and q else 'time'}"


USERS_BY_ACTIVITY = "users by last activity"
SCORES_BY_CREATION = "scores by creation"
RUNS_BY_CREATION = "evaluation runs by creation"
