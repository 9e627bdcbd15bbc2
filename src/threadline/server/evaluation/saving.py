"""Storing an evaluator a client defined (the API's POST and PUT, the Evaluators form):
its definition checked, then stored, then, when asked, its runs queued for the sessions
that ended before it existed (``judge_existing_since``). Everything is checked before
anything is stored, so a refused request changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.server.evaluation import ondemand
from threadline.server.evaluation.checks import check_evaluator
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import Evaluator, EvaluatorIn
from threadline.server.model import datetime_to_ns
from threadline.server.store import Store


def save_evaluator(
    store: Store,
    project_id: int,
    definition: EvaluatorIn,
    key_urls: KeyUrls,
    existing_since: datetime | None = None,
    idle_seconds: int = 0,
    now: datetime | None = None,
    max_waiting: int | None = None,
) -> tuple[Evaluator, int]:
    """The evaluator stored, and how many runs were queued for sessions that ended
    already (0 unless ``existing_since``); ``BadRequest`` (or ``Conflict``, when those
    runs would leave more than ``max_waiting`` waiting) saying why if refused. ``now``:
    the moment of the request (the time ``existing_since`` was reckoned from, when the
    server chose it: a form's "30 days" is then exactly the longest window). The
    sessions ended by ``now`` (idle for ``idle_seconds``) are those ``existing_since``
    judges; the evaluator, if switched on, judges those ending after: the two meet."""
    now = now or datetime.now(UTC)
    evaluator = check_evaluator(store, project_id, definition, key_urls)
    ended_by_ns = datetime_to_ns(now) - idle_seconds * 1_000_000_000
    if existing_since is None:
        return store.put_evaluator(project_id, evaluator, ended_by_ns), 0
    ondemand.check_existing(evaluator, existing_since, now)
    runs = ondemand.plan_existing(store, project_id, evaluator, existing_since, ended_by_ns)
    with ondemand.room_for(store, project_id, len(runs), max_waiting):
        saved = store.put_evaluator(project_id, evaluator, ended_by_ns)
        ondemand.queue(store, project_id, runs)
    found = store.get_evaluator(project_id, saved.name)  # its totals count them now
    return (found if found is not None else saved), len(runs)
