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
from threadline.server.store import Store


def save_evaluator(
    store: Store,
    project_id: int,
    definition: EvaluatorIn,
    key_urls: KeyUrls,
    existing_since: datetime | None = None,
    idle_seconds: int = 0,
    now: datetime | None = None,
) -> tuple[Evaluator, int]:
    """The evaluator stored, and how many runs were queued for sessions that ended
    already (0 unless ``existing_since``); ``BadRequest`` saying why if refused.
    ``now``: the time ``existing_since`` was reckoned from, when the server chose it (a
    form's "30 days" is then exactly the longest window, not a moment past it)."""
    evaluator = check_evaluator(store, project_id, definition, key_urls)
    if existing_since is not None:
        ondemand.check_existing(evaluator, existing_since, now or datetime.now(UTC))
    saved = store.put_evaluator(project_id, evaluator)
    if existing_since is None:
        return saved, 0
    queued = ondemand.runs_for_existing(
        store, project_id, saved, existing_since, idle_seconds * 1_000_000_000
    )
    found = store.get_evaluator(project_id, saved.name)  # its totals count them now
    return (found if found is not None else saved), len(queued)
