"""Deleting every session a filter matches, as the API, the UI and the CLI ask for it.

The ids are gathered first (keyset pages of the Sessions list, rollups only), compared
with the count the caller confirmed, and only then deleted, in batches: each batch is
one store transaction, so ingest waits at most for one batch, never for the whole
deletion. What is deleted is exactly what was counted: a session that starts to match
afterwards is left alone.
"""

from __future__ import annotations

from threadline.server.errors import Conflict
from threadline.server.model import SessionQuery
from threadline.server.store import Store

PAGE = 500
BATCH = 200


def matching_sessions(store: Store, project_id: int, query: SessionQuery) -> list[str]:
    """The ids of every session that ``query``'s filters match (its page is ignored)."""
    ids: list[str] = []
    page_query = query.model_copy(update={"limit": PAGE, "cursor": None})
    while True:
        page = store.list_sessions(project_id, page_query)
        ids += [s.session_id for s in page.items]
        if page.next_cursor is None:
            return ids
        page_query = page_query.model_copy(update={"cursor": page.next_cursor})


def delete_matching_sessions(
    store: Store, project_id: int, query: SessionQuery, confirm_count: int
) -> int:
    """Delete what ``query`` matches if that is ``confirm_count`` sessions; otherwise
    delete nothing (``Conflict``, naming the count). Returns how many were deleted."""
    ids = matching_sessions(store, project_id, query)
    if len(ids) != confirm_count:
        raise Conflict(
            f"the filters match {len(ids)} sessions, not {confirm_count}: nothing was deleted"
        )
    deleted = 0
    for i in range(0, len(ids), BATCH):
        deleted += store.delete_sessions(project_id, ids[i : i + BATCH])
    return deleted
