-- 0007's covering index over ten of a trace's columns, ended first, is narrowed to
-- the six the reads that still go by a trace's end need: retention (the oldest ended
-- first), and the dashboard's users by hour (who was active when, their traces, errors
-- and cost), index-only. The dashboard's filtered or grouped reads and the Users list
-- take their range from it and read the rest of a trace's figures from its row; a
-- user's own traces are found by traces_by_user. The dashboard's default views read the
-- metric aggregate tables (0010) instead. The old index's session id and token counts
-- made each trace of a backfill's batch write a wide entry, mostly to a page of its own.
DROP INDEX traces_for_metrics;
CREATE INDEX traces_by_end ON traces (project_id, end_ns, start_ns, user_id, status, cost_usd);
