"""The session page's evaluations: its Evaluate form and the list of its runs.

The form asks an evaluator (any of the project's, online or not) to judge the session
now; the run is queued in the store and judged in the background, and the list polls
its fragment every second while a run of the session is unfinished.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.server.errors import BadRequest, NotFound
from threadline.server.evaluation import ondemand
from threadline.server.evaluation.model import EvaluationRun, RunQuery
from threadline.server.evaluation.service import wake_runner
from threadline.server.model import Project
from threadline.server.store import Store
from threadline.server.web.auth import PageProject
from threadline.server.web.origin import require_same_origin
from threadline.server.web.render import render, session_url

router = APIRouter(include_in_schema=False)

_MAX_FORM_BYTES = 4096
RUNS_SHOWN = 20


def runs_context(store: Store, project: Project, session_id: str) -> dict[str, Any]:
    """What ``_evaluation_runs.html`` shows: a session's latest runs and the scores they
    wrote (a later judgment of the same session replaces an earlier one's score)."""
    runs = store.list_runs(project.id, RunQuery(session_id=session_id, limit=RUNS_SHOWN)).items
    scores = store.get_scores(project.id, [r.score_id for r in runs if r.score_id])
    return {
        "session_id": session_id,
        "runs": runs,
        "run_scores": scores,
        "polling": unfinished(runs),
    }


def unfinished(runs: list[EvaluationRun]) -> bool:
    return any(run.status in ("pending", "running") for run in runs)


@router.post("/evaluate")
async def evaluate_session(request: Request, project: PageProject) -> Response:
    require_same_origin(request)
    body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    session_id, name = form.get("session_id", ""), form.get("evaluator", "")
    if not session_id or not name:
        raise BadRequest("the form needs a session_id and an evaluator")
    store: Store = request.app.state.store

    def queue() -> None:
        evaluator = store.get_evaluator(project.id, name)
        if evaluator is None:
            raise NotFound(f"no evaluator {name!r} in project {project.name!r}")
        max_waiting = request.app.state.settings.evaluation_max_waiting_runs
        ondemand.runs_for_session(store, project.id, evaluator, session_id, max_waiting)

    await run_in_threadpool(queue)
    wake_runner(request.app.state)
    return RedirectResponse(session_url(session_id) + "#evaluations", status_code=303)


@router.get("/fragments/evaluation-runs")
def runs_fragment(request: Request, project: PageProject, session_id: str) -> Response:
    context = runs_context(request.app.state.store, project, session_id)
    return render(request, "_evaluation_runs.html", context)
