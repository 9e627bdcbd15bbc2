"""The sort orders of the sessions list, the same SQL for both backends."""

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
