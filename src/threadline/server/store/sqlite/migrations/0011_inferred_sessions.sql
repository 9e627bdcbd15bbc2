-- Sessions inferred for traces that carry no session id (store/sqlite/inference.py),
-- and the context-use rollup columns (at the end).

-- A project's choice; a project without a row infers sessions.
CREATE TABLE session_inference (
    project_id  INTEGER PRIMARY KEY,
    enabled     INTEGER NOT NULL
);

-- The keys a trace without a session id offers (role 0: a later turn finds it by them)
-- and asks for while nothing answers them (roles 1-3, by signal: an earlier turn of its
-- conversation that has not arrived yet offers them); 16-byte digests
-- (ingest/session_signals.py). Looked up by key, never scanned.
CREATE TABLE conversation_keys (
    project_id  INTEGER NOT NULL,
    role        INTEGER NOT NULL,
    key         BLOB NOT NULL,
    trace_id    TEXT NOT NULL,
    PRIMARY KEY (project_id, role, key, trace_id)
) WITHOUT ROWID;

-- Each trace inference placed in a session: the session, and the signal that joined it
-- to an earlier turn (NULL for the session's first turn). The trace's rollup carries
-- the same session id as long as no explicit id replaced it.
CREATE TABLE inferred_traces (
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    signal      TEXT,
    PRIMARY KEY (project_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX inferred_traces_by_session ON inferred_traces (project_id, session_id);

-- Each inferred session: its earliest trace (whose id names it, so that turns arriving
-- in any order converge on one id) and the signals that grouped it.
CREATE TABLE inferred_sessions (
    project_id      INTEGER NOT NULL,
    session_id      TEXT NOT NULL,
    root_start_ns   INTEGER NOT NULL,
    root_trace_id   TEXT NOT NULL,
    signals         TEXT NOT NULL,
    PRIMARY KEY (project_id, session_id)
) WITHOUT ROWID;

-- Context growth: how full a model's context window each trace's largest LLM call
-- filled, and each session's peak of it (store/rollups.py), sorted and filtered on.
ALTER TABLE traces ADD COLUMN context_use REAL;
ALTER TABLE sessions ADD COLUMN peak_context_use REAL;
CREATE INDEX sessions_by_context ON sessions (project_id, COALESCE(peak_context_use, -1.0), session_id);
