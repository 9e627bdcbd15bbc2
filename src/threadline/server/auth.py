"""Which project a request speaks for, from its API key.

Exporters send ``Authorization: Bearer <key>`` (what Laminar's and Phoenix's exporters
send). A key belongs to exactly one project; everything a request reads or writes is
scoped to that project. Ingest-only keys may write spans and nothing else.

Langfuse's SDK sends HTTP Basic auth, ``base64(public_key:secret_key)``, to its own OTLP
path: there the secret key is the Threadline key and the public key is not checked
(any value, e.g. the project name), so ``LANGFUSE_SECRET_KEY`` is all a user sets.
"""

from __future__ import annotations

import base64
import binascii
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


def langfuse_key_access(request: Request) -> KeyAccess:
    """The key of a Langfuse SDK export: the password of Basic auth (or a Bearer key)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    key = credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(key, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(
                "Basic credentials are not base64 of '<public key>:<secret key>' "
                "(the secret key is a Threadline API key)"
            ) from None
        key = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        key = ""
    if not key:
        raise Unauthorized(
            "missing API key: set LANGFUSE_SECRET_KEY to a Threadline API key "
            "(sent as 'Authorization: Basic base64(<public key>:<API key>)')"
        )
    access = request.app.state.store.access_for_key(key)
    if access is None:
        raise Unauthorized("unknown or revoked API key")
    return access


def _may_send_spans(access: KeyAccess) -> Project:
    if access.scope == "scores":
        raise Forbidden("this key can only send scores; sending spans needs another key")
    return access.project


def writing_project(access: Annotated[KeyAccess, Depends(key_access)]) -> Project:
    """The project spans are written to: full and ingest-only keys may write."""
    return _may_send_spans(access)


def reading_project(access: Annotated[KeyAccess, Depends(key_access)]) -> Project:
    """The project a request reads: only full keys may."""
    if not access.can_read:
        what = "scores" if access.scope == "scores" else "spans"
        raise Forbidden(f"this key can only send {what}; reading needs a full key")
    return access.project


def langfuse_writing_project(
    access: Annotated[KeyAccess, Depends(langfuse_key_access)],
) -> Project:
    return _may_send_spans(access)


IngestProject = Annotated[Project, Depends(writing_project)]
LangfuseIngestProject = Annotated[Project, Depends(langfuse_writing_project)]
CurrentProject = Annotated[Project, Depends(reading_project)]
# Scores may be sent with any key; what the key's scope allows is decided by the route.
ScoringAccess = Annotated[KeyAccess, Depends(key_access)]
