"""Which project a request speaks for, from its API key.

Exporters send ``Authorization: Bearer <key>`` (what Laminar's and Phoenix's exporters
send). A key belongs to exactly one project; everything a request reads or writes is
scoped to that project. Ingest-only keys may write spans and nothing else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadline.server.errors import Forbidden, Unauthorized
from threadline.server.model import KeyAccess, Project

_bearer = HTTPBearer(auto_error=False, description="A project API key.")


def key_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> KeyAccess:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    access = request.app.state.store.access_for_key(credentials.credentials)
    if access is None:
        raise Unauthorized("unknown or revoked API key")
    return access


def writing_project(access: Annotated[KeyAccess, Depends(key_access)]) -> Project:
    """The project spans are written to: any active key may write."""
    return access.project


def reading_project(access: Annotated[KeyAccess, Depends(key_access)]) -> Project:
    """The project a request reads: ingest-only keys may not."""
    if not access.can_read:
        raise Forbidden("this key can only send spans; reading needs a full key")
    return access.project


IngestProject = Annotated[Project, Depends(writing_project)]
CurrentProject = Annotated[Project, Depends(reading_project)]
