-- The dashboard's session distributions ride on the lists' indexes instead of two
-- indexes of their own (0010), which every session write updated: the cost list's
-- index is widened to hold the range's columns and the cost itself (its order is
-- COALESCE(cost_usd, -1.0): a session's known cost is told from none in the index), as
-- 0017 did for the durations; turns per session are counted from the window's sessions
-- read down sessions_by_activity, which already covers trace_count.
DROP INDEX sessions_by_cost_for_metrics;
DROP INDEX sessions_by_turns_for_metrics;
DROP INDEX sessions_by_cost;
CREATE INDEX sessions_by_cost
    ON sessions (project_id, COALESCE(cost_usd, -1.0), session_id, end_ns, start_ns, cost_usd);
