"""Share links through the JSON API (full key): ``POST /api/v1/shares`` makes a
read-only link to a session or trace (its token shown once), ``GET`` lists the
project's links, ``DELETE /api/v1/shares/{id}`` revokes one, at once."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from threadline.server import sharing
from threadline.server.api.routes import CurrentStore, Cursor, Limit
from threadline.server.auth import CurrentProject
from threadline.server.errors import NotFound
from threadline.server.model import NewShareLink, Page, ShareIn, ShareLink

router = APIRouter(prefix="/api/v1", tags=["sharing"])


class Revoked(BaseModel):
    revoked: bool


@router.post("/shares", status_code=201, summary="Make a read-only link to a session or trace")
def create_share(wanted: ShareIn, project: CurrentProject, store: CurrentStore) -> NewShareLink:
    return sharing.make(store, project, wanted)


@router.get("/shares", summary="The project's share links, newest first (never their tokens)")
def list_shares(
    project: CurrentProject, store: CurrentStore, limit: Limit = 50, cursor: Cursor = None
) -> Page[ShareLink]:
    return sharing.page(store, project.id, limit, cursor)


@router.delete("/shares/{share_id}", summary="Revoke a share link (at once)")
def revoke_share(share_id: str, project: CurrentProject, store: CurrentStore) -> Revoked:
    if not store.revoke_share(project.id, share_id):
        raise NotFound(f"no active share link {share_id!r} in project {project.name!r}")
    return Revoked(revoked=True)
