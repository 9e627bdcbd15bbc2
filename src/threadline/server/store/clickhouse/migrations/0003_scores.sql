-- Scores, their per-target summaries, score name configurations, session notes, and the
-- browser origins a project accepts end-user scores from. Append-only like the rest:
-- a replaced or deleted score, configuration or note is a newer row, and reads pick
-- each one's newest row themselves.

-- Every version of every score: a write, a replacement (same id) and a deletion (a copy
-- of the score with deleted = 1) each add a row, and none is ever merged away (a plain
-- MergeTree), because a score rollup's version counts them (see score_rollups). A
-- score's current state is its row with the highest written_ns (the ClickHouse
-- server's clock, so that a deletion always follows the row it read). target_kind and
-- target_id say which summary the score counts in: its trace when it names one, else
-- its session.
CREATE TABLE IF NOT EXISTS scores (
    project_id   UInt64,
    id           String,
    name         String,
    data_type    LowCardinality(String),
    value        Nullable(Float64),
    label        Nullable(String),
    session_id   Nullable(String),
    trace_id     Nullable(String),
    span_id      Nullable(String),
    source       LowCardinality(String),
    author       Nullable(String),
    comment      Nullable(String) CODEC(ZSTD(3)),
    created_ns   Int64,
    target_kind  LowCardinality(String),
    target_id    String,
    deleted      UInt8,
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9)),
    INDEX scores_by_session session_id TYPE bloom_filter GRANULARITY 4,
    INDEX scores_by_trace trace_id TYPE bloom_filter GRANULARITY 4
) ENGINE = MergeTree
ORDER BY (project_id, id, written_ns);

-- Which scores have ever counted in each (target, name), filled by a materialized view
-- on every insert into scores (no extra round trip). A score that moves to another
-- target, or is deleted, still changes the summary it left: rolling that one up again
-- starts from here.
CREATE TABLE IF NOT EXISTS score_targets (
    project_id   UInt64,
    target_kind  LowCardinality(String),
    target_id    String,
    name         String,
    id           String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, target_kind, target_id, name, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS score_targets_on_insert TO score_targets AS
    SELECT project_id, target_kind, target_id, name, id FROM scores;

-- Per (target, name): recomputed after every score write or deletion from the current
-- state of every score ever in it, with the shared rule (store/score_rollups.py). The
-- version is the number of score rows (all versions, deletions included) of those
-- scores that the writer saw: rows are never removed, so a rollup computed later saw a
-- superset, the highest version is the most complete rollup, and equal versions are
-- equal rollups. count = 0 marks a target whose scores of that name are all gone;
-- reads skip it. Sorted by name first: filters read one name's rows of a kind.
CREATE TABLE IF NOT EXISTS score_rollups (
    project_id   UInt64,
    target_kind  LowCardinality(String),
    name         String,
    target_id    String,
    version      UInt64,
    count        UInt64,
    value_count  UInt64,
    value_sum    Nullable(Float64),
    average      Nullable(Float64),
    label        Nullable(String),
    label_ns     Nullable(Int64)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, target_kind, name, target_id);

-- Score name configurations; deleted = 1 removes one, and a later put brings it back.
CREATE TABLE IF NOT EXISTS score_configs (
    project_id   UInt64,
    name         String,
    data_type    LowCardinality(String),
    min_value    Nullable(Float64),
    max_value    Nullable(Float64),
    labels       Array(String),
    description  Nullable(String),
    deleted      UInt8,
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY (project_id, name);

-- Notes are never edited, only deleted: the deleted version of a note always wins.
-- Sorted by session, which is how they are read (a session page).
CREATE TABLE IF NOT EXISTS notes (
    project_id   UInt64,
    id           String,
    session_id   String,
    trace_id     Nullable(String),
    body         String CODEC(ZSTD(3)),
    author       Nullable(String),
    created_ns   Int64,
    deleted      UInt8
) ENGINE = ReplacingMergeTree(deleted)
ORDER BY (project_id, session_id, id);

-- A project's allowed origins, replaced as a whole list (projects have one row per name
-- and keep no settings).
CREATE TABLE IF NOT EXISTS project_origins (
    project_id   UInt64,
    origins      Array(String),
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY project_id
