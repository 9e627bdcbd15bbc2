-- Every score row's (name, created time, id), in the order the score list reads one
-- name's scores (newest first): the score type read of the Users tab and the dashboard
-- (list_scores(name=X, limit=1)) walks a few entries here instead of grouping every
-- score row of the project (store/clickhouse/scores.py). Filled by the view below from
-- every insert into scores (no extra round trip). A replaced, moved or deleted score
-- keeps its older rows' entries, so an entry may be stale: the reader keeps one only
-- if its score's newest row still has that name and created time. The same entry
-- twice (a deletion copies its score's row) is merged into one.
CREATE TABLE IF NOT EXISTS scores_by_name (
    project_id   UInt64,
    name         String,
    created_ns   Int64,
    id           String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, name, created_ns, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS scores_by_name_on_insert TO scores_by_name AS
    SELECT project_id, name, created_ns, id FROM scores;

-- The scores written before this migration (written beside it too, by the view: the
-- same entry twice is one).
INSERT INTO scores_by_name SELECT project_id, name, created_ns, id FROM scores
