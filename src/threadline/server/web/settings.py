"""The project's Settings page (``/settings``): how long its traces are kept and what is
redacted from its spans at ingest. The JSON twins are ``/api/v1/settings/retention`` and
``/api/v1/settings/redaction``; both go through ``project_rules`` and check redaction
rules with the same ``redaction.rules.parse``.

A refused form is shown again as the user typed it, with the reason, and a 400."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.server import project_rules
from threadline.server.errors import BadRequest, ThreadlineError
from threadline.server.model import Project
from threadline.server.redaction import rules as redaction_rules
from threadline.server.store import Store
from threadline.server.web.auth import PageProject
from threadline.server.web.forms import read_form
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    project: Project,
    *,
    retention_form: dict[str, str] | None = None,
    redaction_form: dict[str, str] | None = None,
    error: tuple[str, str] | None = None,  # (which form, why)
    saved: str | None = None,  # which form was just saved
    status_code: int = 200,
) -> Response:
    store: Store = request.app.state.store
    retention = project_rules.retention(request.app.state, store, project.id)
    rules = store.redaction_rules(project.id)
    if retention_form is None:
        retention_form = {"days": "" if retention.days is None else str(retention.days)}
    if redaction_form is None:
        redaction_form = {f"detector_{d}": "on" for d in rules.detectors}
        redaction_form["patterns"] = patterns_text(rules)
    context = {
        "project": project,
        "tab": "settings",
        "retention": retention,
        "retention_form": retention_form,
        "redaction_form": redaction_form,
        "detectors": redaction_rules.DETECTORS,
        "max_days": project_rules.MAX_RETENTION_DAYS,
        "error": error,
        "saved": saved,
    }
    return render(request, "settings.html", context, status_code=status_code)


@router.get("/settings")
def settings_page(request: Request, project: PageProject, saved: str | None = None) -> Response:
    return _page(request, project, saved=saved if saved in ("retention", "redaction") else None)


def retention_days(text: str) -> int | None:
    """The form's days: empty for the server's, else whole days from 0 (forever)."""
    if not text:
        return None
    # int() would also take "1_000", " 1 " and other scripts' digits ("٣"): the form
    # takes what the JSON API takes, plain ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(f"days {text[:40]!r}: a whole number of days in the digits 0-9, or empty")
    days = int(text)
    if not 0 <= days <= project_rules.MAX_RETENTION_DAYS:
        raise BadRequest(
            f"days {days}: from 0 (keep forever) to {project_rules.MAX_RETENTION_DAYS}"
        )
    return days


def patterns_text(rules: redaction_rules.RedactionRules) -> str:
    return "\n".join(f"{p.name} = {p.regex}" for p in rules.patterns)


def patterns_of(text: str) -> list[tuple[str, str]]:
    """``name = regex`` lines (blank lines skipped). A name has no '=' in it, so the first
    one ends it; spaces around either part are not kept."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, regex = line.partition("=")
        if not equals:
            raise BadRequest(f"pattern line {number}: write it as name = regex")
        found.append((name.strip(), regex.strip()))
    return found


async def _saved_or_refused(
    request: Request,
    project: Project,
    which: str,
    form: dict[str, str],
    save: Callable[[], None],
) -> Response:
    """Run ``save``; on a refusal, the page again with ``which`` form as typed and the
    reason, else back to the page saying it was saved."""
    try:
        await run_in_threadpool(save)
    except ThreadlineError as refused:
        return await run_in_threadpool(
            partial(
                _page,
                request,
                project,
                retention_form=form if which == "retention" else None,
                redaction_form=form if which == "redaction" else None,
                error=(which, refused.message),
                status_code=refused.status,
            )
        )
    return RedirectResponse(f"/settings?saved={which}", status_code=303)


@router.post("/settings/retention")
async def set_retention(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)

    def save() -> None:
        days = retention_days(form.get("days", ""))
        project_rules.set_retention(request.app.state, request.app.state.store, project.id, days)

    return await _saved_or_refused(request, project, "retention", form, save)


@router.post("/settings/redaction")
async def set_redaction(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)

    def save() -> None:
        asked = [k.removeprefix("detector_") for k in form if k.startswith("detector_")]
        detectors = [d for d in asked if form[f"detector_{d}"] == "on"]
        rules = redaction_rules.parse(detectors, patterns_of(form.get("patterns", "")))
        project_rules.set_redaction(request.app.state, request.app.state.store, project.id, rules)

    return await _saved_or_refused(request, project, "redaction", form, save)
