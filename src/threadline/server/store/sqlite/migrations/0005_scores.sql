-- Scores, their per-target summaries, score name configurations, session notes, and the
-- browser origins a project accepts end-user scores from.

-- One row per score, keyed by the id a client chose (or one made for it), so that a
-- retried write replaces rather than adds. target_kind/target_id say which summary the
-- score counts in: its trace when it names one, else its session.
CREATE TABLE scores (
    project_id   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    data_type    TEXT NOT NULL,
    value        REAL,
    label        TEXT,
    session_id   TEXT,
    trace_id     TEXT,
    span_id      TEXT,
    source       TEXT NOT NULL,
    author       TEXT,
    created_ns   INTEGER NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    comment      TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX scores_by_target ON scores (project_id, target_kind, target_id, name);
CREATE INDEX scores_by_time ON scores (project_id, created_ns, id);
CREATE INDEX scores_by_session ON scores (project_id, session_id, created_ns, id);
CREATE INDEX scores_by_trace ON scores (project_id, trace_id, created_ns, id);

-- Per (target, name): recomputed from that target's scores of that name on every write
-- and delete, so that lists and filters never group scores. average is stored (rather
-- than computed) so that a filter on it can use an index.
CREATE TABLE score_rollups (
    project_id   INTEGER NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    count        INTEGER NOT NULL,
    value_count  INTEGER NOT NULL,
    value_sum    REAL,
    average      REAL,
    label        TEXT,
    label_ns     INTEGER,
    PRIMARY KEY (project_id, target_kind, target_id, name)
) WITHOUT ROWID;
CREATE INDEX score_rollups_by_average ON score_rollups (project_id, target_kind, name, average);
CREATE INDEX score_rollups_by_label ON score_rollups (project_id, target_kind, name, label);

CREATE TABLE score_configs (
    project_id   INTEGER NOT NULL,
    name         TEXT NOT NULL,
    data_type    TEXT NOT NULL,
    min_value    REAL,
    max_value    REAL,
    labels       TEXT NOT NULL,
    description  TEXT,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE notes (
    project_id   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    trace_id     TEXT,
    body         TEXT NOT NULL,
    author       TEXT,
    created_ns   INTEGER NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX notes_by_session ON notes (project_id, session_id, created_ns);

ALTER TABLE projects ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
