"""Share links: a read-only view of one session or trace that needs no sign-in.

A link's token is a 256-bit random secret (``tls_...``), stored as its SHA-256 digest
only, like API keys, and looked up by that digest, compared again in constant time. A
link that is unknown, expired or revoked is not found, whichever it is, so a visitor
learns nothing from a guess. What a link shows is cut down here, before any page sees
it: the inputs and outputs (``hide_io``) and chosen metadata keys (``hide_metadata``)
are taken out of the session and trace models themselves.
"""

from __future__ import annotations

import hmac
import time
import uuid

from threadline.server.errors import NotFound
from threadline.server.model import (
    NewShareLink,
    Page,
    Project,
    SessionDetail,
    ShareIn,
    ShareLink,
    TraceDetail,
    ns_to_datetime,
)
from threadline.server.store import Store, cursors, sorts
from threadline.server.store.base import StoredShare
from threadline.server.store.keys import new_secret, secret_digest
from threadline.server.store.session_turns import TurnPage

TOKEN_PREFIX = "tls_"
DAY_NS = 86_400 * 10**9


def digest(token: str) -> bytes:
    return secret_digest(token)


def link(share: StoredShare) -> ShareLink:
    return ShareLink(
        id=share.id,
        kind=share.kind,  # type: ignore[arg-type]
        target_id=share.target_id,
        created_at=ns_to_datetime(share.created_ns),
        expires_at=ns_to_datetime(share.expires_ns),
        revoked_at=ns_to_datetime(share.revoked_ns) if share.revoked_ns else None,
        hide_io=share.hide_io,
        hide_metadata=list(share.hide_metadata),
    )


def page(store: Store, project_id: int, limit: int, cursor: str | None) -> Page[ShareLink]:
    """A page of the project's links, newest first, and the cursor to the next (a
    project that shares often would otherwise send every link it ever made at once)."""
    after = None
    if cursor is not None:
        after = cursors.decode(cursor, int, str, made_by=sorts.SHARES_BY_CREATION)
    found = store.list_shares(project_id, limit + 1, after)
    shown, next_cursor = cursors.page(
        found, limit, lambda s: (s.created_ns, s.id), made_by=sorts.SHARES_BY_CREATION
    )
    return Page[ShareLink](items=[link(s) for s in shown], next_cursor=next_cursor)


def create(
    store: Store, project_id: int, wanted: ShareIn, now_ns: int | None = None
) -> NewShareLink:
    """Make a link (the caller has checked that its target exists)."""
    now = time.time_ns() if now_ns is None else now_ns
    token = new_secret(TOKEN_PREFIX)
    share = StoredShare(
        id=uuid.uuid4().hex,
        project_id=project_id,
        token_hash=digest(token),
        kind=wanted.kind,
        target_id=wanted.target_id,
        created_ns=now,
        expires_ns=now + int(wanted.expires_in_days * DAY_NS),
        revoked_ns=None,
        hide_io=wanted.hide_io,
        hide_metadata=tuple(dict.fromkeys(k for k in wanted.hide_metadata if k)),
    )
    store.add_share(share)
    return NewShareLink(**link(share).model_dump(), token=token, path=f"/shared/{token}")


def resolve(store: Store, token: str) -> StoredShare | None:
    """The live link a token opens, or None: unknown, tampered, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    wanted = digest(token)
    share = store.share_by_token_hash(wanted)
    if share is None or not hmac.compare_digest(share.token_hash, wanted):
        return None
    if share.revoked_ns is not None or share.expires_ns <= time.time_ns():
        return None
    return share


# --- what a link shows --------------------------------------------------------------------


def shown_trace(trace: TraceDetail, share: StoredShare) -> TraceDetail:
    """The trace as the link shows it: no span attributes, events or resource (they may
    hold anything: prompts, keys of the app's own), and without what the link hides."""
    hidden = set(share.hide_metadata)
    shown = trace.model_copy(deep=True)
    shown.metadata = {k: v for k, v in shown.metadata.items() if k not in hidden}
    if share.hide_io:
        shown.input_preview = shown.output_preview = None
    for span in shown.spans:
        span.attributes, span.events, span.resource = {}, [], {}
        if share.hide_io:
            span.input = span.output = None
    return shown


def shown_session(session: SessionDetail, share: StoredShare) -> SessionDetail:
    shown = session.model_copy(deep=True)
    hidden = set(share.hide_metadata)
    for trace in shown.traces:
        trace.metadata = {k: v for k, v in trace.metadata.items() if k not in hidden}
        if share.hide_io:
            trace.input_preview = trace.output_preview = None
    if share.hide_io:
        shown.first_input = shown.last_output = None
    return shown


def target_exists(store: Store, project_id: int, wanted: ShareIn) -> bool:
    if wanted.kind == "session":
        return store.get_session(project_id, wanted.target_id, TurnPage(limit=0)) is not None
    return store.get_trace(project_id, wanted.target_id.lower()) is not None


def make(store: Store, project: Project, wanted: ShareIn) -> NewShareLink:
    """Make a link to a target of the project (404 if there is none)."""
    if wanted.kind == "trace":
        wanted = wanted.model_copy(update={"target_id": wanted.target_id.lower()})
    if not target_exists(store, project.id, wanted):
        raise NotFound(f"no {wanted.kind} {wanted.target_id!r} in project {project.name!r}")
    return create(store, project.id, wanted)
