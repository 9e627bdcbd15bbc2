-- Web UI (issue 4): a feed of written traces for live updates, and indexes for the
-- session sort orders the Sessions tab offers.

-- One row per trace, re-numbered every time ingest rewrites the trace's rollup, so
-- "what changed after watermark N" is one index range scan. AUTOINCREMENT: a seq is
-- never reused, even after the newest row is replaced, so watermarks only move forward.
CREATE TABLE trace_feed (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL
);
CREATE UNIQUE INDEX trace_feed_identity ON trace_feed (project_id, trace_id);
CREATE INDEX trace_feed_by_seq ON trace_feed (project_id, seq);

INSERT INTO trace_feed (project_id, trace_id)
    SELECT project_id, trace_id FROM traces ORDER BY start_ns, trace_id;

-- Ingest upserts rollups with INSERT OR REPLACE, which fires INSERT triggers; the
-- outer REPLACE policy also applies to this insert, which re-numbers the trace.
CREATE TRIGGER trace_feed_on_write AFTER INSERT ON traces
BEGIN
    INSERT OR REPLACE INTO trace_feed (project_id, trace_id)
        VALUES (NEW.project_id, NEW.trace_id);
END;

CREATE INDEX sessions_by_start ON sessions (project_id, start_ns, session_id);
CREATE INDEX sessions_by_duration ON sessions (project_id, (end_ns - start_ns), session_id);
CREATE INDEX sessions_by_cost ON sessions (project_id, COALESCE(cost_usd, -1.0), session_id);
CREATE INDEX sessions_by_tokens ON sessions (project_id, total_tokens, session_id);
