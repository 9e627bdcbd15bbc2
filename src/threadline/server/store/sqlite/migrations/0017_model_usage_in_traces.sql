-- Each trace's usage by model moves from its own table (trace_model_usage, 0010: two
-- more B-tree inserts per trace at pages picked by random trace ids) into the trace's
-- row, which ingest rewrites anyway: a small JSON object, model ('' for spans without
-- one) -> [spans whose cost is known, cost in 1e-12 USD, input, output, total tokens],
-- only the models that used something; NULL for none. store/sqlite/model_usage.py
-- writes it, the filtered and grouped dashboard queries read it with json_each.
ALTER TABLE traces ADD COLUMN model_usage TEXT;

UPDATE traces SET model_usage = (
    SELECT json_group_object(u.model, json_array(u.cost_spans, u.cost_pico, u.input_tokens,
            u.output_tokens, u.total_tokens))
    FROM trace_model_usage AS u
    WHERE u.project_id = traces.project_id AND u.trace_id = traces.trace_id
        AND (u.cost_spans > 0 OR u.input_tokens != 0 OR u.output_tokens != 0
            OR u.total_tokens != 0))
WHERE EXISTS (
    SELECT 1 FROM trace_model_usage AS u
    WHERE u.project_id = traces.project_id AND u.trace_id = traces.trace_id
        AND (u.cost_spans > 0 OR u.input_tokens != 0 OR u.output_tokens != 0
            OR u.total_tokens != 0));

-- The per-hour sums again from the packed usage, so that they count exactly the
-- models a trace's row holds (a model whose spans used nothing had a row before).
DELETE FROM metric_models;
INSERT INTO metric_models (project_id, hour, model, traces, cost_traces, cost_pico,
        input_tokens, output_tokens, total_tokens)
    SELECT t.project_id, ((t.start_ns + 999) / 3600000000000 - ((t.start_ns + 999) % 3600000000000 < 0)),
        u.key, 1, (json_extract(u.value, '$[0]') > 0), json_extract(u.value, '$[1]'),
        json_extract(u.value, '$[2]'), json_extract(u.value, '$[3]'),
        json_extract(u.value, '$[4]')
    FROM traces AS t, json_each(t.model_usage) AS u WHERE t.model_usage IS NOT NULL
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;

DROP TRIGGER metric_usage_after_delete;
DROP TABLE trace_model_usage;

-- A trace deleted (a delete, retention) takes back what it added, its usage by model
-- from its row. As 0010's trigger otherwise; ingest's INSERT OR REPLACE fires none
-- (recursive_triggers is off).
DROP TRIGGER metric_trace_after_delete;
CREATE TRIGGER metric_trace_and_usage_after_delete AFTER DELETE ON traces
BEGIN
    INSERT INTO metric_activity (project_id, last_hour, first_hour, traces, error_traces,
        cost_traces, cost_pico, input_tokens, output_tokens, total_tokens)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), -1, -(r.status = 'error'),
        -(r.cost_usd IS NOT NULL), -COALESCE(CAST(r.cost_usd * 1e12 + 0.5 AS INTEGER), 0),
        -r.input_tokens, -r.output_tokens, -r.total_tokens
    FROM (
        SELECT OLD.project_id AS project_id, OLD.start_ns AS start_ns, OLD.end_ns AS end_ns, OLD.status AS status, OLD.user_id AS user_id, OLD.cost_usd AS cost_usd, OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens, OLD.total_tokens AS total_tokens) AS r WHERE true
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        error_traces = error_traces + excluded.error_traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;
    INSERT INTO metric_user_days (project_id, day, user_id, traces_active, traces,
        error_traces, cost_traces, cost_pico)
    SELECT r.project_id, ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0)) + n.i, r.user_id, -1, -(n.i = 0),
        -(n.i = 0 AND r.status = 'error'), -(n.i = 0 AND r.cost_usd IS NOT NULL),
        -(n.i = 0) * COALESCE(CAST(r.cost_usd * 1e12 + 0.5 AS INTEGER), 0)
    FROM (
        SELECT OLD.project_id AS project_id, OLD.start_ns AS start_ns, OLD.end_ns AS end_ns, OLD.status AS status, OLD.user_id AS user_id, OLD.cost_usd AS cost_usd, OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens, OLD.total_tokens AS total_tokens) AS r CROSS JOIN metric_steps AS n WHERE true
        AND r.user_id IS NOT NULL AND n.i <= (r.end_ns / 86400000000000 - (r.end_ns % 86400000000000 < 0)) - ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0))
    ON CONFLICT DO UPDATE SET traces_active = traces_active + excluded.traces_active,
        traces = traces + excluded.traces, error_traces = error_traces + excluded.error_traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico;
    DELETE FROM metric_user_days WHERE traces_active = 0
        AND (project_id, day, user_id) IN (
            SELECT r.project_id, ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0)) + n.i, r.user_id FROM (
        SELECT OLD.project_id AS project_id, OLD.start_ns AS start_ns, OLD.end_ns AS end_ns, OLD.status AS status, OLD.user_id AS user_id, OLD.cost_usd AS cost_usd, OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens, OLD.total_tokens AS total_tokens) AS r CROSS JOIN metric_steps AS n WHERE true
            AND r.user_id IS NOT NULL AND n.i <= (r.end_ns / 86400000000000 - (r.end_ns % 86400000000000 < 0)) - ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0)));
    INSERT INTO metric_models (project_id, hour, model, traces, cost_traces, cost_pico,
        input_tokens, output_tokens, total_tokens)
    SELECT OLD.project_id, ((OLD.start_ns + 999) / 3600000000000 - ((OLD.start_ns + 999) % 3600000000000 < 0)),
        u.key, -1, -(json_extract(u.value, '$[0]') > 0), -json_extract(u.value, '$[1]'),
        -json_extract(u.value, '$[2]'), -json_extract(u.value, '$[3]'),
        -json_extract(u.value, '$[4]')
    FROM json_each(OLD.model_usage) AS u WHERE true
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;
END;

-- The dashboard's reads of sessions by range (filtered and grouped queries) and down
-- their durations (the distribution) ride on the lists' indexes, widened to cover them,
-- instead of two more indexes (0007, 0010) updated on every session write.
DROP INDEX sessions_for_metrics;
DROP INDEX sessions_by_activity;
CREATE INDEX sessions_by_activity
    ON sessions (project_id, end_ns, session_id, start_ns, trace_count, error_count, cost_usd);
DROP INDEX sessions_by_duration_for_metrics;
DROP INDEX sessions_by_duration;
CREATE INDEX sessions_by_duration
    ON sessions (project_id, (end_ns - start_ns), session_id, end_ns, start_ns);
