-- A name's scores, newest first: the score type read of the Users tab and the dashboard
-- (list_scores with a name, limit 1) found a name's latest score by walking
-- scores_by_time back from now until it met one, which reads every later score of
-- every other name (tens of ms for a name last written long ago, the whole table for a
-- name nobody wrote). list_scores names this index when it filters by name only.
CREATE INDEX scores_by_name ON scores (project_id, name, created_ns, id);
