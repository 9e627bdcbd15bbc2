-- Projects and their API keys. Keys are stored as SHA-256 digests only.
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ns  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    key_hash    BLOB NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_ns  INTEGER NOT NULL,
    revoked_ns  INTEGER
);

-- One row per span, written idempotently on (project_id, trace_id, span_id).
-- A rowid table (not WITHOUT ROWID): rows are kilobytes, and the unique index is the
-- trace lookup path. Small columns come first and payloads last, so that reading the
-- small ones (rollups do, on every ingest) never walks a row's overflow pages.
-- Attributes from which input or output were taken are not stored twice: the
-- *_source columns name them, and reads put them back.
CREATE TABLE spans (
    project_id      INTEGER NOT NULL,
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    status          TEXT NOT NULL,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    total_tokens    INTEGER,
    cost_usd        REAL,
    session_id      TEXT,
    user_id         TEXT,
    metadata        TEXT NOT NULL,
    tags            TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    span_type       TEXT NOT NULL,
    model           TEXT,
    scope           TEXT,
    status_message  TEXT,
    input_source    TEXT,
    output_source   TEXT,
    input           TEXT,
    output          TEXT,
    resource        TEXT NOT NULL,
    events          TEXT NOT NULL,
    attributes      TEXT NOT NULL
);
CREATE UNIQUE INDEX spans_identity ON spans (project_id, trace_id, span_id);

-- Trace rollups, recomputed on ingest for every trace a batch touches.
CREATE TABLE traces (
    project_id      INTEGER NOT NULL,
    trace_id        TEXT NOT NULL,
    session_id      TEXT,
    user_id         TEXT,
    name            TEXT NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    span_count      INTEGER NOT NULL,
    error_count     INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    cost_usd        REAL,
    status          TEXT NOT NULL,
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    input_preview   TEXT,
    output_preview  TEXT,
    PRIMARY KEY (project_id, trace_id)
);
CREATE INDEX traces_by_start ON traces (project_id, start_ns, trace_id);
CREATE INDEX traces_by_session ON traces (project_id, session_id, start_ns, trace_id);
CREATE INDEX traces_by_user ON traces (project_id, user_id, start_ns, trace_id);

-- Session rollups over the traces table, recomputed for every session a batch touches,
-- so that listing sessions never reads spans.
CREATE TABLE sessions (
    project_id      INTEGER NOT NULL,
    session_id      TEXT NOT NULL,
    trace_count     INTEGER NOT NULL,
    span_count      INTEGER NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    cost_usd        REAL,
    error_count     INTEGER NOT NULL,
    user_ids        TEXT NOT NULL,
    first_input     TEXT,
    last_output     TEXT,
    PRIMARY KEY (project_id, session_id)
);
CREATE INDEX sessions_by_activity ON sessions (project_id, end_ns, session_id);
