"""A project's data rules through the JSON API (full key): how long its traces are
kept (``/api/v1/settings/retention``) and what is redacted from its spans at ingest
(``/api/v1/settings/redaction``). Both read and replace the whole setting."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from threadline.server import project_rules
from threadline.server.api.routes import CurrentStore
from threadline.server.auth import CurrentProject
from threadline.server.project_rules import MAX_RETENTION_DAYS
from threadline.server.redaction import rules as redaction_rules

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class RetentionIn(BaseModel):
    # Strict: a JSON integer only. Lax parsing took the string "1_000" (and 5.0) as days.
    model_config = ConfigDict(extra="forbid", strict=True)

    days: int | None = Field(
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="Days to keep a trace after it ended (0: forever); null: the server's "
        "--retention-days.",
    )


class Retention(BaseModel):
    days: int | None = Field(description="The project's own setting (null: none).")
    server_days: int = Field(description="The server's --retention-days (0: forever).")
    effective_days: int = Field(description="What applies: the project's, else the server's.")


class PatternIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Labels what was removed: [name].")
    regex: str = Field(description="RE2 syntax (no backreferences or lookaround).")


class RedactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detectors: list[str] = Field(
        default=[],
        description="Built-in detectors to apply: " + ", ".join(redaction_rules.DETECTORS),
    )
    patterns: list[PatternIn] = Field(default=[], description="Your own patterns.")


class Redaction(BaseModel):
    detectors: list[str]
    patterns: list[PatternIn]
    available_detectors: dict[str, str] = Field(description="Every built-in detector.")


def _retention(request: Request, store: CurrentStore, project_id: int) -> Retention:
    setting = project_rules.retention(request.app.state, store, project_id)
    return Retention(
        days=setting.days, server_days=setting.server_days, effective_days=setting.effective_days
    )


@router.get("/retention", summary="How long the project's traces are kept")
def get_retention(request: Request, project: CurrentProject, store: CurrentStore) -> Retention:
    return _retention(request, store, project.id)


@router.put("/retention", summary="Set the project's own retention (null: the server's)")
def put_retention(
    wanted: RetentionIn, request: Request, project: CurrentProject, store: CurrentStore
) -> Retention:
    project_rules.set_retention(request.app.state, store, project.id, wanted.days)
    return _retention(request, store, project.id)


def _redaction(rules: redaction_rules.RedactionRules) -> Redaction:
    return Redaction(
        detectors=list(rules.detectors),
        patterns=[PatternIn(name=p.name, regex=p.regex) for p in rules.patterns],
        available_detectors=redaction_rules.DETECTORS,
    )


@router.get("/redaction", summary="What is redacted from the project's spans at ingest")
def get_redaction(project: CurrentProject, store: CurrentStore) -> Redaction:
    return _redaction(store.redaction_rules(project.id))


@router.put("/redaction", summary="Replace the project's redaction rules (applies to new spans)")
def put_redaction(
    wanted: RedactionIn, request: Request, project: CurrentProject, store: CurrentStore
) -> Redaction:
    rules = redaction_rules.parse(wanted.detectors, [(p.name, p.regex) for p in wanted.patterns])
    project_rules.set_redaction(request.app.state, store, project.id, rules)
    return _redaction(rules)
