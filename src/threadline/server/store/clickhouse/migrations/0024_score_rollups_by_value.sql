-- The score rollups of each (kind, name) in the order of their value, as SQLite's
-- score_rollups_by_average and _by_label indexes hold them: a list sorted by a score
-- takes its page's candidates from the start of a range here (store/clickhouse/
-- score_sorted.py) instead of grouping every rollup of the name to find each one's
-- newest value. Filled by the views below from every rollup inserted (no extra round
-- trip, no read); a row of each (target, value) a rollup ever had, so a row here may
-- be stale: the reader keeps a candidate only if its newest rollup has that value
-- still (a score replaced or deleted since leaves its old value's row, never a wrong
-- answer). Stale rows add at most one per rollup written, as score_rollups' unmerged
-- versions do; the same (target, value) twice is merged into one.
CREATE TABLE IF NOT EXISTS score_rollups_by_average (
    project_id   UInt64,
    target_kind  LowCardinality(String),
    name         String,
    average      Float64,
    target_id    String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, target_kind, name, average, target_id);

CREATE TABLE IF NOT EXISTS score_rollups_by_label (
    project_id   UInt64,
    target_kind  LowCardinality(String),
    name         String,
    label        String,
    target_id    String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, target_kind, name, label, target_id);

-- (The values are selected as they are, Nullable, and made plain by the insert: an
-- alias such as assumeNotNull(average) AS average would be what the WHERE reads, and
-- let every rollup without one through as 0 or ''.)
CREATE MATERIALIZED VIEW IF NOT EXISTS score_rollups_by_average_on_insert
    TO score_rollups_by_average AS
    SELECT project_id, target_kind, name, average, target_id
    FROM score_rollups WHERE average IS NOT NULL;

CREATE MATERIALIZED VIEW IF NOT EXISTS score_rollups_by_label_on_insert
    TO score_rollups_by_label AS
    SELECT project_id, target_kind, name, label, target_id
    FROM score_rollups WHERE label IS NOT NULL;

-- The rollups written before this migration (written beside it too, by the views: the
-- same row twice is one).
INSERT INTO score_rollups_by_average
    SELECT project_id, target_kind, name, average, target_id
    FROM score_rollups WHERE average IS NOT NULL;

INSERT INTO score_rollups_by_label
    SELECT project_id, target_kind, name, label, target_id
    FROM score_rollups WHERE label IS NOT NULL;
