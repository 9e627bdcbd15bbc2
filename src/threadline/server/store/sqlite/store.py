"""The embedded default store: one SQLite file in WAL mode.

``SQLiteStore`` is the one class the rest of the server imports; it is made of parts,
one concern each, that share the database of ``database.py`` (its connections, its one
writer, its schema):

- ``span_writes.py``: the write transaction, spans in and the rollups they change;
- ``reads.py``: the lists, a session's and a trace's detail, metrics, the live feed;
- ``access.py``: projects and API keys;
- ``transfer.py``: the store read and written whole, for ``threadline migrate``
  (``run_transfer.py``: its evaluation runs);
- ``evaluations.py``: evaluators and evaluation runs;
- and here, share links, deletion, retention and redaction rules, scores, score
  configurations and notes, each a transaction or a read around the functions of its
  own module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from threadline.server.model import (
    GenAIEvent,
    Note,
    NoteIn,
    Page,
    Score,
    ScoreConfig,
    ScoreQuery,
    ScoreRecord,
    SpanRecord,
)
from threadline.server.redaction.rules import RedactionRules
from threadline.server.scoring import score as present_score
from threadline.server.store import name_types
from threadline.server.store import rows as table_rows
from threadline.server.store.base import StoredShare
from threadline.server.store.columns import SPAN_RECORD
from threadline.server.store.genai_events import takes_late_events
from threadline.server.store.sqlite import (
    deletion,
    genai_events,
    inference,
    passing_reads,
    project_rules,
    retention,
    scores,
    shares,
    space,
    trace_json,
)
from threadline.server.store.sqlite.access import Access
from threadline.server.store.sqlite.evaluations import EvaluationTables
from threadline.server.store.sqlite.reads import Reads
from threadline.server.store.sqlite.run_transfer import RunTransfer
from threadline.server.store.sqlite.span_writes import SpanWrites
from threadline.server.store.sqlite.trace_keys import KEY_OF
from threadline.server.store.sqlite.transfer import Transfer


class SQLiteStore(SpanWrites, Reads, Access, Transfer, RunTransfer, EvaluationTables):
    # --- share links ----------------------------------------------------------------

    def add_share(self, share: StoredShare) -> None:
        with self._transaction() as conn:
            shares.add(conn, share)

    def list_shares(
        self, project_id: int, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> list[StoredShare]:
        with self._read() as conn:
            return shares.list_for(conn, project_id, limit, after)

    def revoke_share(self, project_id: int, share_id: str) -> bool:
        with self._transaction() as conn:
            return shares.revoke(conn, project_id, share_id)

    def share_by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        with self._read() as conn:
            return shares.by_token_hash(conn, token_hash)

    # --- deletion -------------------------------------------------------------------

    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        self._tallies.forget(project_id, trace_ids)
        with self._transaction() as conn:
            return deletion.delete_traces(conn, project_id, trace_ids, self._payloads.unpacker())

    def delete_sessions(self, project_id: int, session_ids: Sequence[str]) -> int:
        with self._transaction() as conn:
            existed, trace_ids = deletion.delete_sessions(
                conn, project_id, session_ids, self._payloads.unpacker()
            )
        # As delete_traces does: no tally of a deleted trace stays to be added to.
        self._tallies.forget(project_id, trace_ids)
        return existed

    # --- GenAI log events (genai_events.py) -------------------------------------------

    def write_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> list[GenAIEvent]:
        with self._transaction() as conn:
            return genai_events.write(conn, project_id, events)

    def attach_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> None:
        with self._transaction() as conn:
            genai_events.attach(conn, project_id, events)

    def spans_taking_late_events(
        self, project_id: int, spans: Sequence[tuple[str, str]]
    ) -> list[SpanRecord]:
        with self._read() as conn:
            rows = [
                row
                for trace_id, span_id in spans
                for row in conn.execute(
                    f"SELECT {SPAN_RECORD.sql} FROM spans WHERE trace_key = {KEY_OF}"
                    " AND span_id = ? AND span_type = 'LLM'"
                    " AND (input IS NULL OR output IS NULL)",
                    (project_id, trace_id, span_id),
                )
            ]
        unpack = self._payloads.unpacker()
        found = [table_rows.span_record(row, unpack) for row in rows]
        return [span for span in found if takes_late_events(span)]

    def waiting_genai_events(self, received_after_ns: int) -> dict[int, list[GenAIEvent]]:
        with self._read() as conn:
            return genai_events.waiting(conn, received_after_ns)

    def delete_waiting_genai_events(self, received_before_ns: int) -> int:
        deleted = 0
        while True:  # in batches: the writer is shared with ingest
            with self._transaction() as conn:
                step = genai_events.delete_waiting(conn, received_before_ns, 1_000)
            deleted += step
            if step < 1_000:
                return deleted

    # --- bulk export (trace_json.py) ---------------------------------------------------

    def session_trace_ids(
        self, project_id: int, session_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        with self._read() as conn:
            return trace_json.session_trace_ids(conn, project_id, session_ids)

    def trace_details_json(self, project_id: int, trace_ids: Sequence[str]) -> dict[str, bytes]:
        with self._read() as reader, passing_reads.small_page_cache(reader) as conn:
            return trace_json.trace_details_json(
                conn, project_id, trace_ids, self._payloads.thread_unpacker()
            )

    # --- retention and redaction (retention.py, project_rules.py) ----------------------

    def expired_traces(self, project_id: int, ended_before_ns: int, limit: int) -> list[str]:
        with self._read() as conn:
            return retention.expired_traces(conn, project_id, ended_before_ns, limit)

    def expires_by_itself(self, days: int) -> bool:
        return False

    def reclaim_space(self, max_pages: int) -> int:
        # Giving pages back writes too: a full disk says so as a write does.
        with self._write_lock, space.full_disk_as_storage_full(self.path.parent):
            return retention.reclaim(self._writer, max_pages)

    def retention_overrides(self) -> dict[int, int]:
        with self._read() as conn:
            return project_rules.retention_overrides(conn)

    def set_retention_days(self, project_id: int, days: int | None) -> None:
        with self._transaction() as conn:
            project_rules.set_retention_days(conn, project_id, days)

    def redaction_rules(self, project_id: int) -> RedactionRules:
        with self._read() as conn:
            return project_rules.redaction_rules(conn, project_id)

    def set_redaction_rules(self, project_id: int, rules: RedactionRules) -> None:
        with self._transaction() as conn:
            project_rules.set_redaction_rules(conn, project_id, rules)

    # --- scores, score configurations, notes ------------------------------------------

    def write_scores(
        self,
        project_id: int,
        records: Sequence[ScoreRecord],
        *,
        check_types: bool = True,
        over_end_user_only: bool = False,
        configs: Sequence[ScoreConfig] | None = None,
    ) -> frozenset[str]:
        # ``configs`` unused: the type check reads them in the write's own transaction.
        if not records:
            return frozenset()
        with self._transaction() as conn:
            if over_end_user_only:
                stored = scores.get(conn, project_id, [r.id for r in records])
                refused = frozenset(i for i, r in stored.items() if r.source != "end-user")
                if refused:
                    return refused
            scores.write(conn, project_id, records, check_types)
        return frozenset()

    def get_scores(self, project_id: int, score_ids: Sequence[str]) -> dict[str, Score]:
        with self._read() as conn:
            found = scores.get(conn, project_id, score_ids)
        return {score_id: present_score(r) for score_id, r in found.items()}

    def list_scores(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        with self._read() as conn:
            return scores.list_scores(conn, project_id, query)

    def delete_score(self, project_id: int, score_id: str) -> bool:
        with self._transaction() as conn:
            return scores.delete(conn, project_id, score_id)

    def list_score_configs(self, project_id: int) -> list[ScoreConfig]:
        with self._read() as conn:
            return scores.list_configs(conn, project_id)

    def put_score_config(self, project_id: int, config: ScoreConfig) -> None:
        with self._transaction() as conn:
            # One step with the write: no score of another type lands in between.
            name_types.check_config(
                config.name, config.data_type, scores.stored_type(conn, project_id, config.name)
            )
            scores.put_config(conn, project_id, config)

    def delete_score_config(self, project_id: int, name: str) -> bool:
        with self._transaction() as conn:
            return scores.delete_config(conn, project_id, name)

    def add_note(self, project_id: int, note: NoteIn) -> Note:
        with self._transaction() as conn:
            return scores.add_note(conn, project_id, note, time.time_ns())

    def list_notes(self, project_id: int, session_id: str) -> list[Note]:
        with self._read() as conn:
            return scores.list_notes(conn, project_id, session_id)

    def delete_note(self, project_id: int, note_id: str) -> bool:
        with self._transaction() as conn:
            return scores.delete_note(conn, project_id, note_id)

    def allowed_origins(self, project_id: int) -> list[str]:
        with self._read() as conn:
            return scores.allowed_origins(conn, project_id)

    def set_allowed_origins(self, project_id: int, origins: Sequence[str]) -> None:
        with self._transaction() as conn:
            scores.set_allowed_origins(conn, project_id, origins)

    def session_inference(self, project_id: int) -> bool:
        with self._read() as conn:
            return inference.enabled(conn, project_id)

    def set_session_inference(self, project_id: int, enabled: bool) -> None:
        with self._transaction() as conn:
            inference.set_enabled(conn, project_id, enabled)
