"""The Evaluators page: the project's evaluators with what they did and what their
judge cost, a form to define one or change one, and a button to delete one. The JSON
twin is ``/api/v1/evaluators``; both save through ``save_evaluator`` (the same checks,
and the same choice to judge the sessions that ended before the evaluator existed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from threadline.server.errors import BadRequest, NotFound, ThreadlineError
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import DEFAULT_PROMPT, EvaluatorIn
from threadline.server.evaluation.saving import save_evaluator
from threadline.server.evaluation.service import wake_runner
from threadline.server.model import Project
from threadline.server.store import Store
from threadline.server.web import flash
from threadline.server.web.auth import PageProject
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render

router = APIRouter(include_in_schema=False)

_MAX_FORM_BYTES = 64 * 1024  # a prompt of 20,000 characters, form-encoded


def _page(
    request: Request,
    project: Project,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    store: Store = request.app.state.store
    settings = request.app.state.settings
    evaluators = store.list_evaluators(project.id)
    context = {
        "project": project,
        "tab": "evaluators",
        "evaluators": evaluators,
        # What the page's help says of this server: its settings, its key bindings
        # (None: unbound, any key to any URL) and the project's runs waiting.
        "help": {
            "timeout": settings.judge_timeout_seconds,
            "attempts": settings.judge_attempts,
            "transcript_chars": settings.transcript_max_chars,
            "max_waiting": settings.evaluation_max_waiting_runs,
            "waiting": sum(e.totals.runs_pending for e in evaluators),
            "key_urls": KeyUrls.of(settings).bound,
            "judging": settings.evaluation_concurrency > 0,
        },
        "form": form or {},
        # The name of the evaluator the form changes (None: the form makes a new one).
        "editing": (form or {}).get("editing") or None,
        "error": error,
    }
    return render(request, "evaluators.html", context, status_code=status_code)


# A new evaluator's form starts from working values (the common judge, a prompt that
# fits the default boolean score), so that a name and the judge's address make one.
NEW_EVALUATOR = {
    "prompt": DEFAULT_PROMPT,
    "base_url": "https://api.openai.com/v1",
    "model": "gpt-4o-mini",
    "score_type": "boolean",
    "sampling_rate": "1",
    "online": "on",
}


@router.get("/evaluators")
def evaluators_page(request: Request, project: PageProject, edit: str | None = None) -> Response:
    """The page; with ``edit``, its form holds that evaluator, to change it."""
    if edit is None:
        return _page(request, project, dict(NEW_EVALUATOR))
    store: Store = request.app.state.store
    evaluator = store.get_evaluator(project.id, edit)
    if evaluator is None:
        return _page(request, project, None, f"no evaluator {edit!r} to edit", 404)
    return _page(request, project, {**form_of(evaluator), "editing": evaluator.name})


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    return {k: v[0].strip() for k, v in parse_qs(body).items()}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def form_of(evaluator: EvaluatorIn) -> dict[str, str]:
    """The form's fields for an evaluator: what ``definition`` reads back into it."""

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    return {
        "name": evaluator.name,
        "target": evaluator.target,
        "prompt": evaluator.prompt,
        "base_url": str(evaluator.judge.base_url),
        "model": evaluator.judge.model,
        "api_key_env": evaluator.judge.api_key_env or "",
        "score_name": evaluator.score.name,
        "score_type": evaluator.score.data_type,
        "min_value": number(evaluator.score.min_value),
        "max_value": number(evaluator.score.max_value),
        "labels": ", ".join(evaluator.score.labels),
        "sampling_rate": f"{evaluator.sampling_rate:g}",
        "tags": ", ".join(evaluator.filter.tags),
        "user_id": evaluator.filter.user_id or "",
        "metadata": "\n".join(f"{k}={v}" for k, v in evaluator.filter.metadata.items()),
        "online": "on" if evaluator.online else "",
    }


def definition(form: dict[str, str]) -> EvaluatorIn:
    """An evaluator from the page's form (``ValidationError`` if it does not make one)."""
    metadata = {}
    for line in form.get("metadata", "").splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            metadata[key.strip()] = value.strip()
    name = form.get("name", "")
    return EvaluatorIn.model_validate(
        {
            "name": name,
            "target": form.get("target", "session"),
            "prompt": form.get("prompt", ""),
            "judge": {
                "base_url": form.get("base_url", ""),
                "model": form.get("model", ""),
                "api_key_env": form.get("api_key_env") or None,
            },
            "score": {
                "name": form.get("score_name") or name,
                "data_type": form.get("score_type", "boolean"),
                "min_value": form.get("min_value") or None,
                "max_value": form.get("max_value") or None,
                "labels": _split(form.get("labels", "")),
            },
            "sampling_rate": form.get("sampling_rate") or 1.0,
            "filter": {
                "tags": _split(form.get("tags", "")),
                "metadata": metadata,
                "user_id": form.get("user_id") or None,
            },
            "online": form.get("online") == "on",
        }
    )


@router.post("/evaluators")
async def create_evaluator(request: Request, _: SameOrigin, project: PageProject) -> Response:
    form = await _form(request)
    store: Store = request.app.state.store

    editing = form.get("editing")

    def save() -> int:
        evaluator = definition(form)
        exists = store.get_evaluator(project.id, evaluator.name) is not None
        if editing is None and exists:
            raise BadRequest(f"an evaluator named {evaluator.name!r} exists already")
        if editing is not None:
            # A new name would be a new evaluator, its runs and totals left behind.
            if evaluator.name != editing:
                raise BadRequest("an evaluator's name cannot change: make a new one")
            if not exists:
                raise NotFound(f"no evaluator {editing!r} to change (deleted meanwhile?)")
        settings = request.app.state.settings
        now = datetime.now(UTC)
        _, queued = save_evaluator(
            store,
            project.id,
            evaluator,
            KeyUrls.of(settings),
            existing_since(form, now),
            settings.session_idle_seconds,
            now,
            settings.evaluation_max_waiting_runs,
        )
        return queued

    try:
        queued = await run_in_threadpool(save)
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors()
        )
        return await run_in_threadpool(_page, request, project, form, problems, 400)
    except ThreadlineError as refused:
        return await run_in_threadpool(
            _page, request, project, form, refused.message, refused.status
        )
    if queued:
        wake_runner(request.app.state)
    return RedirectResponse("/evaluators", status_code=303)


# The form's choices for judging the sessions that ended before the evaluator existed.
EXISTING_WINDOWS = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def existing_since(form: dict[str, str], now: datetime) -> datetime | None:
    """When the sessions to judge at once start (``judge_existing``; none by default)."""
    choice = form.get("judge_existing", "")
    if not choice:
        return None
    if choice not in EXISTING_WINDOWS:
        raise BadRequest(f"judge_existing: one of {', '.join(EXISTING_WINDOWS)}")
    # Said in the form's words: the API's refusal names its own field and route.
    if form.get("online") != "on":
        raise BadRequest(
            "Also judging the sessions that ended already needs Online checked. An"
            " evaluator that is not online judges past sessions when asked: the Evaluate"
            " button on a session's page, or threadline evaluate NAME --since 7d."
        )
    return now - EXISTING_WINDOWS[choice]


@router.post("/evaluators/delete")
async def delete_evaluator(request: Request, _: SameOrigin, project: PageProject) -> Response:
    name = (await _form(request)).get("name", "")
    store: Store = request.app.state.store
    deleted = await run_in_threadpool(store.delete_evaluator, project.id, name)
    if not deleted:
        return await run_in_threadpool(
            _page, request, project, None, f"no evaluator {name!r} to delete", 404
        )
    said = f"Deleted evaluator {name}; the scores it wrote stay."
    return flash.say(request, RedirectResponse("/evaluators", status_code=303), said)
