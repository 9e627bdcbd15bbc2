"""Which project a request speaks for, from its API key.

Exporters send ``Authorization: Bearer <key>`` (what Laminar's and Phoenix's exporters
send). A key belongs to exactly one project; everything a request reads or writes is
scoped to that project.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadline.server.errors import Unauthorized
from threadline.server.model import Project

_bearer = HTTPBearer(auto_error=False, description="A project API key.")


def project_for_request(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Project:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    project = request.app.state.store.project_for_key(credentials.credentials)
    if project is None:
        raise Unauthorized("unknown or revoked API key")
    return project


CurrentProject = Annotated[Project, Depends(project_for_request)]
