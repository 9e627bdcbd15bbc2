-- The dashboard's score averages per bucket, kept on write (store/sqlite/metric_scores.py)
-- rather than joining every score rollup to its trace or session on each read (236 ms
-- for 30 days at 1M spans with 30 % of the sessions and their traces scored).
--
-- Each rollup keeps the hour its target started in (NULL: the target is not stored, or
-- is active in no hour); metric_scores holds each (project, hour, name)'s sum and count
-- of the numeric rollups counting there, summed in the index's order (by value), so a
-- bucket's figures follow from its rollups alone.
ALTER TABLE score_rollups ADD COLUMN target_hour INTEGER;

UPDATE score_rollups SET target_hour = (
    SELECT CASE WHEN t.end_ns / 3600000000000 >= (t.start_ns + 999) / 3600000000000
        THEN (t.start_ns + 999) / 3600000000000 END
    FROM trace_keys AS k CROSS JOIN traces AS t ON t.trace_key = k.key
    WHERE k.project_id = score_rollups.project_id AND k.trace_id = score_rollups.target_id
) WHERE target_kind = 'trace';

UPDATE score_rollups SET target_hour = (
    SELECT CASE WHEN s.end_ns / 3600000000000 >= (s.start_ns + 999) / 3600000000000
        THEN (s.start_ns + 999) / 3600000000000 END
    FROM sessions AS s
    WHERE s.project_id = score_rollups.project_id AND s.session_id = score_rollups.target_id
) WHERE target_kind = 'session';

CREATE INDEX score_rollups_by_hour
    ON score_rollups (project_id, target_hour, name, value_count, value_sum)
    WHERE value_count > 0;

CREATE TABLE metric_scores (
    project_id   INTEGER NOT NULL,
    hour         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    value_count  INTEGER NOT NULL,
    value_sum    REAL NOT NULL,
    PRIMARY KEY (project_id, hour, name)
) WITHOUT ROWID;

INSERT INTO metric_scores (project_id, hour, name, value_count, value_sum)
SELECT project_id, target_hour, name, SUM(value_count), SUM(value_sum)
FROM score_rollups INDEXED BY score_rollups_by_hour
WHERE value_count > 0 AND target_hour IS NOT NULL
GROUP BY project_id, target_hour, name;
