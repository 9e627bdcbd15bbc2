"""Deleting sessions and traces through the JSON API (full keys only).

``DELETE /api/v1/sessions/{id}`` and ``DELETE /api/v1/traces/{id}`` delete one;
``POST /api/v1/sessions/delete`` takes the Sessions list's filters in its query string
and deletes every session they match, once the body confirms how many that is (ask
with ``dry_run`` first). Handlers are plain ``def``: the store blocks.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from threadline.server.api.routes import CurrentStore, SessionFilters
from threadline.server.auth import CurrentProject
from threadline.server.deletion import delete_matching_sessions, matching_sessions
from threadline.server.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/v1", tags=["deletion"])


class Deleted(BaseModel):
    deleted: int = Field(description="How many sessions or traces were deleted.")


class BulkDelete(BaseModel):
    # Strict, and no other fields: lax parsing read the string "5" as a count and "yes"
    # as a dry run, and a misspelt "dry-run" was ignored (a real deletion, if counted).
    model_config = ConfigDict(extra="forbid", strict=True)

    confirm_count: int | None = Field(
        default=None,
        ge=0,
        description="How many sessions the filters match (from a dry run): the deletion "
        "happens only if that is still the number, else 409 and nothing is deleted.",
    )
    dry_run: bool = Field(default=False, description="Only count what the filters match.")


class BulkDeleted(BaseModel):
    matched: int = Field(description="How many sessions the filters match.")
    deleted: int = Field(description="How many were deleted (0 on a dry run).")


@router.delete("/sessions/{session_id:path}", summary="Delete a session with all its traces")
def delete_session(session_id: str, project: CurrentProject, store: CurrentStore) -> Deleted:
    if not store.delete_sessions(project.id, [session_id]):
        raise NotFound(f"no session {session_id!r} in project {project.name!r}")
    return Deleted(deleted=1)


@router.delete("/traces/{trace_id}", summary="Delete a trace with its spans, scores and notes")
def delete_trace(trace_id: str, project: CurrentProject, store: CurrentStore) -> Deleted:
    if not store.delete_traces(project.id, [trace_id.lower()]):
        raise NotFound(f"no trace {trace_id!r} in project {project.name!r}")
    return Deleted(deleted=1)


@router.post("/sessions/delete", summary="Delete every session the list's filters match")
def delete_sessions(
    project: CurrentProject, store: CurrentStore, filters: SessionFilters, body: BulkDelete
) -> BulkDeleted:
    if body.dry_run:
        return BulkDeleted(matched=len(matching_sessions(store, project.id, filters)), deleted=0)
    if body.confirm_count is None:
        raise BadRequest(
            "say how many sessions you mean to delete (confirm_count), or count them first"
            " with dry_run"
        )
    deleted = delete_matching_sessions(store, project.id, filters, body.confirm_count)
    return BulkDeleted(matched=body.confirm_count, deleted=deleted)
