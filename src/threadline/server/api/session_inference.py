"""A project's choice to infer sessions for traces that carry no session id (full key):
``GET`` and ``PUT /api/v1/settings/session-inference``. On by default; turning it off
stops new inference and leaves sessions inferred before as they are."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from threadline.server.api.routes import CurrentStore
from threadline.server.auth import CurrentProject

router = APIRouter(prefix="/api/v1", tags=["settings"])


class SessionInference(BaseModel):
    # Strict: true or false only, not "no" or 0 read as a choice.
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool


@router.get(
    "/settings/session-inference",
    summary="Whether traces without a session id are grouped into inferred sessions",
)
def get_session_inference(project: CurrentProject, store: CurrentStore) -> SessionInference:
    return SessionInference(enabled=store.session_inference(project.id))


@router.put(
    "/settings/session-inference",
    summary="Turn session inference on or off for the key's project",
)
def put_session_inference(
    wanted: SessionInference, project: CurrentProject, store: CurrentStore
) -> SessionInference:
    store.set_session_inference(project.id, wanted.enabled)
    return SessionInference(enabled=store.session_inference(project.id))
