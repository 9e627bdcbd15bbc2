"""A project's data rules (retention and redaction) read and changed the same way from
the JSON API (``api/project_rules.py``) and the web UI's Settings page
(``web/settings.py``): the store keeps the rule, then whatever acts on it hears at once,
so a change is not left waiting on a cache or a sleeping thread."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import State

from threadline.server.redaction.rules import RedactionRules
from threadline.server.retention import effective_days
from threadline.server.store import Store

MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class RetentionSetting:
    days: int | None  # the project's own (None: the server's)
    server_days: int  # --retention-days (0: forever)
    effective_days: int  # what applies


def retention(state: State, store: Store, project_id: int) -> RetentionSetting:
    server_days: int = state.settings.retention_days
    overrides = store.retention_overrides()
    return RetentionSetting(
        days=overrides.get(project_id),
        server_days=server_days,
        effective_days=effective_days(server_days, overrides, project_id),
    )


def set_retention(state: State, store: Store, project_id: int, days: int | None) -> None:
    """Keep the project's days (None: the server's); retention starts a pass now."""
    store.set_retention_days(project_id, days)
    state.retention.wake()


def redaction_rules(state: State, project_id: int) -> RedactionRules:
    """The project's redaction rules as this process applies them (cached for a moment:
    ``redaction/project_rules.py``), for whatever is written beside spans."""
    rules: RedactionRules = state.ingest.redaction.get(project_id)
    return rules


def set_redaction(state: State, store: Store, project_id: int, rules: RedactionRules) -> None:
    """Keep the project's rules (checked by ``redaction.rules.parse``); this process's
    ingest applies them from its next export on."""
    store.set_redaction_rules(project_id, rules)
    state.ingest.redaction.forget(project_id)
