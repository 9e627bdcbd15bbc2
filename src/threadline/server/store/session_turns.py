"""A session's turns (its traces in start order, then trace id) read a page at a time:
what a page asks for, and the opaque cursor to the next one (both backends).

A session has no size bound a reader could follow (one client may write one session
id for ever), so its detail carries a page of its turns. A page starts at a turn
number (``turn``, from 1: the web UI's turn links) or after a cursor, which holds the
last turn's sort key and the number of the next one, bound to its project and session
(``cursors.py``: another's is a 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threadline.server.errors import BadRequest
from threadline.server.store import cursors


@dataclass(frozen=True)
class TurnPage:
    """``limit`` turns from turn number ``turn``, or after ``cursor`` when given."""

    limit: int
    turn: int = 1
    cursor: str | None = None


@dataclass(frozen=True)
class TurnStart:
    """Where a page begins: after the sort key ``after`` (None: at the session's
    first turn, skipping ``skip`` of them), its first turn numbered ``turn``."""

    after: tuple[int, str] | None
    skip: int
    turn: int


def _made_by(project_id: int, session_id: str) -> str:
    return f"turns of session {session_id!r} in project {project_id}"


def start(page: TurnPage, project_id: int, session_id: str) -> TurnStart:
    """Where ``page`` begins (a cursor of another session or project: a 400)."""
    if page.cursor is None:
        return TurnStart(None, page.turn - 1, page.turn)
    start_ns, trace_id, turn = cursors.decode(
        page.cursor, int, str, int, made_by=_made_by(project_id, session_id)
    )
    if turn < 2:
        raise BadRequest(f"invalid cursor {page.cursor!r}", faults=[("cursor", None)])
    return TurnStart((start_ns, trace_id), 0, turn)


def next_cursor(
    keys: Sequence[tuple[int, str]], limit: int, begun: TurnStart, project_id: int, session_id: str
) -> str | None:
    """The cursor after a page whose read asked for one turn more than ``limit``
    (``keys``: the sort keys read), None when it is the session's last."""
    if len(keys) <= limit or limit == 0:
        return None
    start_ns, trace_id = keys[limit - 1]
    return cursors.encode(
        start_ns, trace_id, begun.turn + limit, made_by=_made_by(project_id, session_id)
    )
