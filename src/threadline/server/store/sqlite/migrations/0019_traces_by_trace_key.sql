-- The traces' rollup table keyed by each trace's integer key (0018's trace_keys): its
-- rowid IS the key, so a new trace's row is appended at the table's right edge, and the
-- table has no index keyed by the random trace id any more (its primary key was
-- (project, trace id), a B-tree that took each new trace at a random page and, with
-- trace_keys_identity, passed the writer's 16 MiB page cache near 1.6M spans:
-- docs/benchmarks.md). A trace is found by its id through the one lookup,
-- trace_keys_identity (store/sqlite/trace_keys.py), which also keeps ids unique.
--
-- SQLite cannot change a table's primary key in place: the table is made again, in key
-- order, with its indexes and triggers. The one-off cost is writing the traces' rows and
-- indexes once (docs/deploy.md).
DROP TRIGGER trace_feed_on_write;
DROP TRIGGER metric_trace_and_usage_after_delete;
CREATE TABLE traces_by_key (
    trace_key       INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL,
    trace_id        TEXT NOT NULL,
    session_id      TEXT,
    user_id         TEXT,
    name            TEXT NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    span_count      INTEGER NOT NULL,
    error_count     INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    cost_usd        REAL,
    status          TEXT NOT NULL,
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    input_preview   TEXT,
    output_preview  TEXT,
    context_use     REAL,
    model_usage     TEXT
);
-- Every rollup has a key (0018 minted one for each); one without would be dropped, so
-- none is left out: a key is minted for any such row first.
INSERT INTO trace_keys (project_id, trace_id)
    SELECT t.project_id, t.trace_id FROM traces AS t
    WHERE NOT EXISTS (SELECT 1 FROM trace_keys AS k
        WHERE k.project_id = t.project_id AND k.trace_id = t.trace_id)
    ORDER BY t.start_ns, t.trace_id;
INSERT INTO traces_by_key (trace_key, project_id, trace_id, session_id, user_id, name,
        start_ns, end_ns, span_count, error_count, input_tokens, output_tokens,
        total_tokens, cost_usd, status, tags, metadata, input_preview, output_preview,
        context_use, model_usage)
    SELECT k.key, t.project_id, t.trace_id, t.session_id, t.user_id, t.name,
        t.start_ns, t.end_ns, t.span_count, t.error_count, t.input_tokens, t.output_tokens,
        t.total_tokens, t.cost_usd, t.status, t.tags, t.metadata, t.input_preview,
        t.output_preview, t.context_use, t.model_usage
    FROM trace_keys AS k CROSS JOIN traces AS t
        ON t.project_id = k.project_id AND t.trace_id = k.trace_id
    ORDER BY k.key;
DROP TABLE traces;
ALTER TABLE traces_by_key RENAME TO traces;
-- As 0001's and 0007's: the lists and the dashboard read the traces by time.
CREATE INDEX traces_by_start ON traces (project_id, start_ns, trace_id);
CREATE INDEX traces_by_session ON traces (project_id, session_id, start_ns, trace_id);
CREATE INDEX traces_by_user ON traces (project_id, user_id, start_ns, trace_id);
CREATE INDEX traces_for_metrics ON traces (
    project_id, end_ns, start_ns, status, user_id, session_id,
    cost_usd, input_tokens, output_tokens, total_tokens
);

-- As 0018's, with the key in hand: ingest's INSERT OR REPLACE of a rollup re-numbers
-- the trace in the feed.
CREATE TRIGGER trace_feed_on_write AFTER INSERT ON traces
BEGIN
    INSERT OR REPLACE INTO trace_feed (project_id, trace_id, trace_key)
        VALUES (NEW.project_id, NEW.trace_id, NEW.trace_key);
END;

-- 0017's, unchanged: a trace deleted (a delete, retention) takes back what it added.
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
