"""The SQLite store's filters beyond the base list queries.

Kept beside ``store.py`` so the base queries stay readable: ``list_traces`` and
``list_sessions`` (for the JSON API and the web UI alike) call these to add the tag,
metadata, status and live-feed filters, and to order sessions by something other than
last activity (``store/sorts.py``).
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import SessionQuery, TraceQuery


def trace_conditions(
    project_id: int, tag: str | None, metadata: dict[str, str], changed_after: int | None
) -> tuple[list[str], list[Any]]:
    """Conditions on a ``traces`` row for the UI's tag, metadata and live filters (the
    dashboard's metrics filter with the same ones)."""
    where: list[str] = []
    args: list[Any] = []
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE json_each.value = ?)")
        args.append(tag)
    for key, value in metadata.items():
        # json_each rather than a JSON path: keys may hold dots or quotes. Values are
        # compared as ``model.metadata_text`` writes them, which is how pages show them:
        # SQLite would read a JSON true as 1.
        where.append(
            "EXISTS (SELECT 1 FROM json_each(traces.metadata) WHERE json_each.key = ? AND"
            " (CASE json_each.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
            " ELSE CAST(json_each.value AS TEXT) END) = ?)"
        )
        args += [key, value]
    if changed_after is not None:
        where.append(
            "traces.trace_key IN (SELECT trace_key FROM trace_feed"
            " WHERE trace_feed.project_id = ? AND seq > ?)"
        )
        args += [project_id, changed_after]
    return where, args


def add_trace_filters(
    where: list[str], args: list[Any], project_id: int, query: TraceQuery
) -> None:
    more, more_args = trace_conditions(project_id, query.tag, query.metadata, query.changed_after)
    where.extend(more)
    args.extend(more_args)


def add_session_filters(
    where: list[str], args: list[Any], project_id: int, query: SessionQuery
) -> None:
    if query.min_context_use is not None:
        where.append("peak_context_use >= ?")
        args.append(query.min_context_use)
    if query.status == "error":
        where.append("error_count > 0")
    elif query.status == "ok":
        where.append("error_count = 0")
    # The user is the list's own choice (``user_sessions.py``): rare or common.
    more, more_args = session_conditions(
        project_id, None, query.tag, query.metadata, query.changed_after
    )
    where.extend(more)
    args.extend(more_args)


def session_conditions(
    project_id: int,
    user_id: str | None,
    tag: str | None,
    metadata: dict[str, str],
    changed_after: int | None = None,
) -> tuple[list[str], list[Any]]:
    """Conditions on a ``sessions`` row for the user, tag, metadata and live filters,
    as the Sessions list and the dashboard's session figures both apply them: the user
    must have a trace in the session, and one trace of it (maybe another) must carry the
    tag and every metadata pair (and have changed, live), whenever those traces ran."""
    where: list[str] = []
    args: list[Any] = []
    if user_id:
        where.append(
            "sessions.session_id IN (SELECT session_id FROM traces"
            " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL)"
        )
        args += [project_id, user_id]
    more, more_args = trace_conditions(project_id, tag, metadata, changed_after)
    if more:
        where.append(
            "sessions.session_id IN (SELECT session_id FROM traces WHERE traces.project_id = ?"
            f" AND session_id IS NOT NULL AND {' AND '.join(more)})"
        )
        args += [project_id, *more_args]
    return where, args


def contains(text: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) for ``text`` anywhere, ASCII
    case-insensitive as SQLite's LIKE is; ``%`` and ``_`` in ``text`` are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
