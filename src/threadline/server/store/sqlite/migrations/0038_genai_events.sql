-- GenAI log events (OTLP logs: the chat messages of an instrumented model call) kept
-- for their span (store/sqlite/genai_events.py). A row waits for its span (attached
-- 0) until the span is stored and takes its message, or the retention task deletes it
-- once it has waited genai_event_wait_seconds; one that came after its span was
-- stored is kept beside it (attached 1), read with its trace and deleted with it.
CREATE TABLE genai_events (
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    span_id     TEXT NOT NULL,
    event_id    INTEGER NOT NULL,
    time_ns     INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    is_output   INTEGER NOT NULL,
    attached    INTEGER NOT NULL,
    message     TEXT NOT NULL
);
-- A trace's events (its detail, its deletion), a span's (kept beside it).
CREATE INDEX genai_events_by_span ON genai_events (project_id, trace_id, span_id);
-- The waiting ones by age: the retention task's deletes, the server's start.
CREATE INDEX genai_events_waiting ON genai_events (received_ns) WHERE attached = 0;
