"""The storage contract every backend implements.

Callers (ingest, API, web pages, CLI) only see this protocol; ``open_store`` picks the
backend from a URL. The contract test suite in ``tests/store`` runs unchanged against
every implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from threadline.server.model import (
    KeyInfo,
    Page,
    Project,
    Session,
    SessionDetail,
    SessionQuery,
    SpanRecord,
    Trace,
    TraceDetail,
    TraceQuery,
)


class Store(Protocol):
    # --- ingest -----------------------------------------------------------------
    def write_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        """Store spans idempotently on (project, trace_id, span_id) and bring the trace
        and session rollups they touch up to date, in one transaction.

        Returns how many spans were new. When it returns, the spans are committed.
        """
        ...

    # --- queries ----------------------------------------------------------------
    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]: ...

    def get_session(self, project_id: int, session_id: str) -> SessionDetail | None: ...

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]: ...

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None: ...

    # --- projects and keys ------------------------------------------------------
    def create_project(self, name: str) -> Project:
        """Create the project, or return it if one of that name exists."""
        ...

    def list_projects(self) -> list[Project]: ...

    def create_key(self, project_id: int) -> str:
        """Make a new API key for the project; return the secret (stored hashed only)."""
        ...

    def project_for_key(self, key: str) -> Project | None:
        """The project a key belongs to, or None for an unknown or revoked key."""
        ...

    def list_keys(self) -> list[KeyInfo]: ...

    def revoke_key(self, key_id: int) -> bool: ...

    def close(self) -> None: ...
