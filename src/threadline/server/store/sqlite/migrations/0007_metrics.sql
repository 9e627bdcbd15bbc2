-- Dashboard metrics: covering indexes over the rollups, so that the dashboard's
-- queries read only index pages. end_ns leads: the rows active in a range are those
-- ending after its start (and starting before its end), and a range usually ends now.
CREATE INDEX traces_for_metrics ON traces (
    project_id, end_ns, start_ns, status, user_id, session_id,
    cost_usd, input_tokens, output_tokens, total_tokens
);
CREATE INDEX sessions_for_metrics ON sessions (
    project_id, end_ns, start_ns, trace_count, error_count, cost_usd
);
