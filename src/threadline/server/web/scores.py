"""Scores on pages: the chips of a session, trace or span, and the forms that add,
change and delete them.

A score panel shows the scores written on one target (a session itself, a trace
itself, or one span) and re-renders itself after each form post (htmx swaps it; a
browser without scripts is sent back to the page). Writes go through
``scoring.prepare`` with source ``ui``, like the JSON API's, so a bad value gets the
same clear 4xx; every post must come from this server's own pages
(``origin.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from threadline.server import project_rules, score_types
from threadline.server.errors import BadRequest, Forbidden, NotFound
from threadline.server.model import (
    Project,
    Score,
    ScoreConfig,
    ScoreIn,
    ScoreQuery,
    SessionDetail,
)
from threadline.server.redaction.annotations import redact_scores
from threadline.server.redaction.rules import RedactionRules
from threadline.server.score_types import name_types, written_types
from threadline.server.store import Store
from threadline.server.store.session_turns import TurnPage
from threadline.server.web.auth import PageProject
from threadline.server.web.forms import read_form
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render, session_url, trace_url

router = APIRouter(include_in_schema=False)

# Scores shown on one page, per query: a target with more shows its newest.
MAX_SCORES = 1000


@dataclass(frozen=True)
class Target:
    """What a score panel shows the scores of: a session itself, a trace itself, or
    one span of a trace."""

    session_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    @classmethod
    def from_form(cls, form: dict[str, str]) -> Target:
        trace_id = form.get("trace_id", "").lower() or None
        if trace_id:
            target = cls(trace_id=trace_id, span_id=form.get("span_id", "").lower() or None)
        else:
            target = cls(session_id=form.get("session_id"))
        if not target.session_id and not target.trace_id:
            raise BadRequest("the form names no session or trace to score")
        return target

    def holds(self, score: Score) -> bool:
        if self.trace_id:
            return score.trace_id == self.trace_id and score.span_id == self.span_id
        return score.session_id == self.session_id and score.trace_id is None

    def page_url(self) -> str:
        if self.trace_id:
            return trace_url(self.trace_id, self.span_id)
        return session_url(self.session_id or "")


def _store(request: Request) -> Store:
    return request.app.state.store


def scores_of(store: Store, project_id: int, target: Target) -> list[Score]:
    """The target's own scores, oldest first (a new chip joins at the end)."""
    query = (
        ScoreQuery(limit=MAX_SCORES, trace_id=target.trace_id, span_id=target.span_id)
        if target.trace_id
        else ScoreQuery(limit=MAX_SCORES, session_id=target.session_id, session_own=True)
    )
    found = store.list_scores(project_id, query).items
    return [s for s in reversed(found) if target.holds(s)]


def turn_scores(store: Store, project_id: int, trace_ids: list[str]) -> dict[str, list[Score]]:
    """Each trace's own scores (not its spans'), oldest first: one query for a page."""
    by_trace: dict[str, list[Score]] = {t: [] for t in trace_ids}
    if not trace_ids:
        return by_trace
    query = ScoreQuery(limit=MAX_SCORES * 10, trace_ids=trace_ids)
    for score in reversed(store.list_scores(project_id, query).items):
        if score.trace_id in by_trace and score.span_id is None:
            by_trace[score.trace_id].append(score)
    return by_trace


def every_score(store: Store, project_id: int, query: ScoreQuery) -> list[Score]:
    """Every score ``query`` matches, page after page, newest first."""
    found: list[Score] = []
    cursor = None
    while True:
        page = store.list_scores(project_id, query.model_copy(update={"cursor": cursor}))
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            return found


def session_scores(store: Store, project_id: int, session: SessionDetail) -> list[Score]:
    """All the scores of a session: on itself, its traces and their spans, oldest first
    (the session export)."""
    by_id = {
        s.id: s
        for s in every_score(
            store, project_id, ScoreQuery(limit=MAX_SCORES, session_id=session.session_id)
        )
    }
    trace_ids = [t.trace_id for t in session.traces]
    for i in range(0, len(trace_ids), 500):
        query = ScoreQuery(limit=MAX_SCORES, trace_ids=trace_ids[i : i + 500])
        by_id.update((s.id, s) for s in every_score(store, project_id, query))
    return sorted(by_id.values(), key=lambda s: (s.created_at, s.id))


def configs_of(store: Store, project_id: int) -> list[ScoreConfig]:
    return store.list_score_configs(project_id)


def form_context(configs: list[ScoreConfig]) -> dict[str, Any]:
    """What a page with score panels needs once: the configured names and their rules
    (the form offers them and shapes its value input by them)."""
    return {
        "score_configs": configs,
        "score_configs_json": [c.model_dump(mode="json") for c in configs],
    }


# --- form posts ----------------------------------------------------------------------


def _check_target(store: Store, project: Project, target: Target) -> None:
    """404 unless the target exists in the signed-in project: a page only scores what
    it shows (the JSON API may score what has not arrived yet, the UI has nothing to
    show for it)."""
    if target.trace_id:
        trace = store.get_trace(project.id, target.trace_id)
        if trace is None:
            raise NotFound(f"no trace {target.trace_id!r} in project {project.name!r}")
        if target.span_id and all(s.span_id != target.span_id for s in trace.spans):
            raise NotFound(f"no span {target.span_id!r} in trace {target.trace_id!r}")
    elif store.get_session(project.id, target.session_id or "", TurnPage(limit=0)) is None:
        raise NotFound(f"no session {target.session_id!r} in project {project.name!r}")


def _score_in(form: dict[str, str], target: Target) -> ScoreIn:
    if "value" not in form:
        raise BadRequest("give the score a value")
    try:
        return ScoreIn(
            id=form.get("id"),
            name=form.get("name", ""),
            value=form["value"],
            data_type=form.get("data_type"),  # type: ignore[arg-type]
            session_id=target.session_id,
            trace_id=target.trace_id,
            span_id=target.span_id,
            comment=form.get("comment"),
            author=form.get("author"),
        )
    except ValidationError as error:
        raise BadRequest(_problems(error)) from None


def _problems(error: ValidationError) -> str:
    names = {"name": "score name", "data_type": "type"}
    return "; ".join(
        f"{names.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'form'}: {e['msg']}"
        for e in error.errors()
    )


def _save(
    store: Store,
    project: Project,
    form: dict[str, str],
    target: Target,
    rules: RedactionRules,
) -> None:
    score = _score_in(form, target)
    _check_target(store, project, target)
    if score.id:
        stored = store.get_scores(project.id, [score.id]).get(score.id)
        if stored is None:
            raise NotFound(f"no score {score.id!r} in project {project.name!r}")
        if stored.source != "ui":
            raise Forbidden(
                f"score {score.id!r} came from {stored.source}: only scores written in the "
                "UI can be changed here (add another, or delete it)"
            )
    configs = {c.name: c for c in store.list_score_configs(project.id)}
    types = name_types(store, project.id, configs)
    record = score_types.prepare(score, configs, "ui", time.time_ns(), types)
    store.write_scores(project.id, redact_scores([record], rules), configs=list(configs.values()))


def _delete(store: Store, project: Project, form: dict[str, str], target: Target) -> None:
    score_id = form.get("id", "")
    if not score_id:
        raise BadRequest("the form names no score to delete")
    if not store.delete_score(project.id, score_id):
        raise NotFound(f"no score {score_id!r} in project {project.name!r}")


def _answer(request: Request, project: Project, target: Target, compact: bool) -> Response:
    """The re-rendered panel for htmx; back to the page for a plain form post."""
    if not request.headers.get("HX-Request"):
        return RedirectResponse(target.page_url(), status_code=303)
    store = _store(request)
    context = {
        "target": target,
        "scores": scores_of(store, project.id, target),
        "compact": compact,
        "configs": {c.name: c for c in configs_of(store, project.id)},
    }
    return render(request, "_scores_panel.html", context)


@router.post("/ui/scores")
async def save_score(request: Request, project: PageProject, _: SameOrigin) -> Response:
    """Add a score to a session, trace or span, or change one written in the UI (``id``)."""
    form = await read_form(request)
    target = Target.from_form(form)
    rules = project_rules.redaction_rules(request.app.state, project.id)
    await run_in_threadpool(_save, _store(request), project, form, target, rules)
    if form.get("id"):  # a score replaced, perhaps by one of another type
        written_types(request.app.state).forget(project.id)
    return await run_in_threadpool(_answer, request, project, target, "compact" in form)


@router.post("/ui/scores/delete")
async def delete_score(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)
    target = Target.from_form(form)
    await run_in_threadpool(_delete, _store(request), project, form, target)
    written_types(request.app.state).forget(project.id)  # the lists read its type again
    return await run_in_threadpool(_answer, request, project, target, "compact" in form)
