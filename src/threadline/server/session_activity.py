"""Whether a session is still going: active until it has had no new trace for the
idle time (``session_idle_seconds``), then ended. Computed when a session is shown,
from its end time, so nothing is stored that time alone would change."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

from threadline.server.model import Session, datetime_to_ns

Activity = Literal["active", "ended"]


def activity(session: Session, idle_seconds: float, now_ns: int | None = None) -> Activity:
    idle_ns = int(idle_seconds * 1e9)
    ended = (now_ns or time.time_ns()) - datetime_to_ns(session.end_time) >= idle_ns
    return "ended" if ended else "active"


def mark_activity(sessions: Iterable[Session], idle_seconds: float) -> None:
    now = time.time_ns()
    for session in sessions:
        session.activity = activity(session, idle_seconds, now)
