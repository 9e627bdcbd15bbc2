-- The dashboard's score sums per hour (metric_scores, 0028) in fixed point, so that a
-- score write adds and takes back its rollups' values instead of summing the touched
-- hours again from every rollup in them (store/sqlite/metric_scores.py): a rollup's
-- value sum counts as its whole part (toward zero) and its billionths, rounded half
-- away from zero (metric_scores.UNITS_SQL, which these expressions repeat), each summed
-- as an integer. The index the hours were summed again along is no longer read.
DROP INDEX score_rollups_by_hour;

DROP TABLE metric_scores;

CREATE TABLE metric_scores (
    project_id   INTEGER NOT NULL,
    hour         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    value_count  INTEGER NOT NULL,
    value_whole  INTEGER NOT NULL,
    value_nanos  INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, name)
) WITHOUT ROWID;

INSERT INTO metric_scores (project_id, hour, name, value_count, value_whole, value_nanos)
SELECT project_id, target_hour, name, SUM(value_count),
    SUM(CAST(value_sum AS INTEGER)),
    SUM(CAST((value_sum - CAST(value_sum AS INTEGER)) * 1e9
        + (CASE WHEN value_sum < 0 THEN -0.5 ELSE 0.5 END) AS INTEGER))
FROM score_rollups
WHERE value_count > 0 AND target_hour IS NOT NULL
GROUP BY project_id, target_hour, name;
