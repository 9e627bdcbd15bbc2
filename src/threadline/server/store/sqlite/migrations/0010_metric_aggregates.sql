-- Dashboard metrics kept on write: per-bucket aggregates of the trace and session
-- rollups (and of each trace's usage by model), kept in the same transaction as the
-- rollups they follow: a rollup rewritten takes back what its old version added and adds
-- the new one; a deleted rollup takes back what it added. Sums are integers (cost in
-- picodollars), so adding and taking back is exact. store/sqlite/metric_aggregates.py
-- reads them; docs/architecture.md has the rules.

-- 0, 1, 2, ...: a trace deleted takes itself out of each day it was active in (up to
-- 2^16 days apart: triggers cannot use a recursive WITH).
CREATE TABLE metric_steps (i INTEGER PRIMARY KEY);
INSERT INTO metric_steps (i)
    WITH RECURSIVE step(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM step WHERE i < 65535)
    SELECT i FROM step;

-- Traces and sessions by the first and last hour they were active in (first hour: that
-- of start_ns + 999 ns, as a bucket ends at its last microsecond). Day and week keys
-- follow from hour keys exactly, so one table serves every bucket width. Amounts
-- (cost, tokens) belong to the first hour.
CREATE TABLE metric_activity (
    project_id      INTEGER NOT NULL,
    last_hour       INTEGER NOT NULL,
    first_hour      INTEGER NOT NULL,
    traces          INTEGER NOT NULL DEFAULT 0,
    error_traces    INTEGER NOT NULL DEFAULT 0,
    cost_traces     INTEGER NOT NULL DEFAULT 0,  -- traces whose cost is known
    cost_pico       INTEGER NOT NULL DEFAULT 0,  -- their cost in 1e-12 USD
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens    INTEGER NOT NULL DEFAULT 0,
    sessions        INTEGER NOT NULL DEFAULT 0,
    error_sessions  INTEGER NOT NULL DEFAULT 0,
    cost_sessions   INTEGER NOT NULL DEFAULT 0,  -- sessions whose cost is known
    PRIMARY KEY (project_id, last_hour, first_hour)
) WITHOUT ROWID;

-- A user on a day (UTC): the traces active that day (the user counts while there is
-- one), and those that started that day with their errors and cost (the top users).
CREATE TABLE metric_user_days (
    project_id      INTEGER NOT NULL,
    day             INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    traces_active   INTEGER NOT NULL,
    traces          INTEGER NOT NULL,
    error_traces    INTEGER NOT NULL,
    cost_traces     INTEGER NOT NULL,
    cost_pico       INTEGER NOT NULL,
    -- By user first: the top users of a range add up each user's days in key order.
    PRIMARY KEY (project_id, user_id, day)
) WITHOUT ROWID;

-- The number of metric_user_days rows of a day: its active users, read without counting.
CREATE TABLE metric_user_day_counts (
    project_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    users       INTEGER NOT NULL,
    PRIMARY KEY (project_id, day)
) WITHOUT ROWID;

CREATE TRIGGER metric_user_day_counts_on_insert AFTER INSERT ON metric_user_days
BEGIN
    INSERT INTO metric_user_day_counts (project_id, day, users)
        VALUES (NEW.project_id, NEW.day, 1)
        ON CONFLICT DO UPDATE SET users = users + 1;
END;

CREATE TRIGGER metric_user_day_counts_on_delete AFTER DELETE ON metric_user_days
BEGIN
    UPDATE metric_user_day_counts SET users = users - 1
        WHERE project_id = OLD.project_id AND day = OLD.day;
END;

-- A trace's usage by model (model '' for spans without one): sums over its spans,
-- written by ingest with the trace's rollup (store/sqlite/model_usage.py). start_ns is
-- the trace's, whose first hour the usage counts in.
CREATE TABLE trace_model_usage (
    project_id      INTEGER NOT NULL,
    trace_id        TEXT NOT NULL,
    model           TEXT NOT NULL,
    start_ns        INTEGER NOT NULL,
    spans           INTEGER NOT NULL,
    cost_spans      INTEGER NOT NULL,  -- spans whose cost is known
    cost_pico       INTEGER NOT NULL,  -- the sum of each span's cost in 1e-12 USD
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    PRIMARY KEY (project_id, trace_id, model)
) WITHOUT ROWID;

-- Usage by model per hour the traces started in.
CREATE TABLE metric_models (
    project_id      INTEGER NOT NULL,
    hour            INTEGER NOT NULL,
    model           TEXT NOT NULL,
    traces          INTEGER NOT NULL,
    cost_traces     INTEGER NOT NULL,
    cost_pico       INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, model)
) WITHOUT ROWID;

-- Session distributions: the k-th session of the range by turns, duration or cost is
-- read down one of these, which hold the time columns the range is checked on.
CREATE INDEX sessions_by_turns_for_metrics ON sessions (project_id, trace_count, end_ns, start_ns);
CREATE INDEX sessions_by_duration_for_metrics
    ON sessions (project_id, (end_ns - start_ns), end_ns, start_ns);
CREATE INDEX sessions_by_cost_for_metrics ON sessions (project_id, cost_usd, end_ns, start_ns)
    WHERE cost_usd IS NOT NULL;
CREATE INDEX sessions_by_errors_for_metrics
    ON sessions (project_id, error_count, end_ns, start_ns, session_id) WHERE error_count > 0;

-- What was stored before this migration, added up once.
INSERT INTO metric_activity (project_id, last_hour, first_hour, traces, error_traces,
        cost_traces, cost_pico, input_tokens, output_tokens, total_tokens)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), 1, (r.status = 'error'),
        (r.cost_usd IS NOT NULL), COALESCE(CAST(r.cost_usd * 1e12 + 0.5 AS INTEGER), 0),
        r.input_tokens, r.output_tokens, r.total_tokens
    FROM traces AS r WHERE true
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        error_traces = error_traces + excluded.error_traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;
INSERT INTO metric_activity (project_id, last_hour, first_hour, sessions, error_sessions,
        cost_sessions)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), 1, (r.error_count > 0),
        (r.cost_usd IS NOT NULL)
    FROM sessions AS r WHERE true
    ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions,
        error_sessions = error_sessions + excluded.error_sessions,
        cost_sessions = cost_sessions + excluded.cost_sessions;
INSERT INTO metric_user_days (project_id, day, user_id, traces_active, traces,
        error_traces, cost_traces, cost_pico)
    SELECT r.project_id, ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0)) + n.i, r.user_id, 1, (n.i = 0),
        (n.i = 0 AND r.status = 'error'), (n.i = 0 AND r.cost_usd IS NOT NULL),
        (n.i = 0) * COALESCE(CAST(r.cost_usd * 1e12 + 0.5 AS INTEGER), 0)
    FROM traces AS r CROSS JOIN metric_steps AS n WHERE true
        AND r.user_id IS NOT NULL AND n.i <= (r.end_ns / 86400000000000 - (r.end_ns % 86400000000000 < 0)) - ((r.start_ns + 999) / 86400000000000 - ((r.start_ns + 999) % 86400000000000 < 0))
    ON CONFLICT DO UPDATE SET traces_active = traces_active + excluded.traces_active,
        traces = traces + excluded.traces, error_traces = error_traces + excluded.error_traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico;
-- Usage by model of the traces stored before: picodollars per span, as ingest counts them.
INSERT INTO trace_model_usage
SELECT s.project_id, s.trace_id, COALESCE(s.model, ''), MIN(t.start_ns), COUNT(*),
    COUNT(s.cost_usd), COALESCE(SUM(CAST(s.cost_usd * 1e12 + 0.5 AS INTEGER)), 0),
    COALESCE(SUM(s.input_tokens), 0), COALESCE(SUM(s.output_tokens), 0),
    COALESCE(SUM(s.total_tokens), 0)
FROM spans AS s JOIN traces AS t ON t.project_id = s.project_id AND t.trace_id = s.trace_id
GROUP BY s.project_id, s.trace_id, COALESCE(s.model, '');

INSERT INTO metric_models (project_id, hour, model, traces, cost_traces, cost_pico,
        input_tokens, output_tokens, total_tokens)
    SELECT r.project_id, ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), r.model, 1, (r.cost_spans > 0),
        r.cost_pico, r.input_tokens, r.output_tokens,
        r.total_tokens
    FROM trace_model_usage AS r WHERE true
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;

-- Ingest keeps the traces' part itself, from each trace's old and new rollup and usage
-- (store/sqlite/metric_upkeep.py), adding up a batch's changes before it writes them.
-- A trace deleted (a delete, retention) takes back here what it added, with its usage.
-- Ingest's INSERT OR REPLACE fires no delete trigger (recursive_triggers is off).
CREATE TRIGGER metric_trace_after_delete AFTER DELETE ON traces
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
    DELETE FROM trace_model_usage WHERE project_id = OLD.project_id AND trace_id = OLD.trace_id;
END;

CREATE TRIGGER metric_usage_after_delete AFTER DELETE ON trace_model_usage
BEGIN
    INSERT INTO metric_models (project_id, hour, model, traces, cost_traces, cost_pico,
        input_tokens, output_tokens, total_tokens)
    SELECT r.project_id, ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), r.model, -1, -(r.cost_spans > 0),
        -r.cost_pico, -r.input_tokens, -r.output_tokens,
        -r.total_tokens
    FROM (
        SELECT OLD.project_id AS project_id, OLD.model AS model, OLD.start_ns AS start_ns, OLD.cost_spans AS cost_spans, OLD.cost_pico AS cost_pico, OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens, OLD.total_tokens AS total_tokens) AS r WHERE true
    ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
        cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        total_tokens = total_tokens + excluded.total_tokens;
END;


-- Sessions are written by ingest, deletes and session inference alike: triggers keep
-- them. A rewritten row (INSERT OR REPLACE) first takes back what the old one added,
-- while it can still be read, and the new one adds after it.
CREATE TRIGGER metric_session_before_write BEFORE INSERT ON sessions
BEGIN
    INSERT INTO metric_activity (project_id, last_hour, first_hour, sessions, error_sessions,
        cost_sessions)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), -1, -(r.error_count > 0),
        -(r.cost_usd IS NOT NULL)
    FROM sessions AS r WHERE r.project_id = NEW.project_id AND r.session_id = NEW.session_id
    ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions,
        error_sessions = error_sessions + excluded.error_sessions,
        cost_sessions = cost_sessions + excluded.cost_sessions;
END;

CREATE TRIGGER metric_session_after_write AFTER INSERT ON sessions
BEGIN
    INSERT INTO metric_activity (project_id, last_hour, first_hour, sessions, error_sessions,
        cost_sessions)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), 1, (r.error_count > 0),
        (r.cost_usd IS NOT NULL)
    FROM (
        SELECT NEW.project_id AS project_id, NEW.start_ns AS start_ns, NEW.end_ns AS end_ns, NEW.error_count AS error_count, NEW.cost_usd AS cost_usd) AS r WHERE true
    ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions,
        error_sessions = error_sessions + excluded.error_sessions,
        cost_sessions = cost_sessions + excluded.cost_sessions;
END;

CREATE TRIGGER metric_session_after_delete AFTER DELETE ON sessions
BEGIN
    INSERT INTO metric_activity (project_id, last_hour, first_hour, sessions, error_sessions,
        cost_sessions)
    SELECT r.project_id, (r.end_ns / 3600000000000 - (r.end_ns % 3600000000000 < 0)), ((r.start_ns + 999) / 3600000000000 - ((r.start_ns + 999) % 3600000000000 < 0)), -1, -(r.error_count > 0),
        -(r.cost_usd IS NOT NULL)
    FROM (
        SELECT OLD.project_id AS project_id, OLD.start_ns AS start_ns, OLD.end_ns AS end_ns, OLD.error_count AS error_count, OLD.cost_usd AS cost_usd) AS r WHERE true
    ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions,
        error_sessions = error_sessions + excluded.error_sessions,
        cost_sessions = cost_sessions + excluded.cost_sessions;
END;


