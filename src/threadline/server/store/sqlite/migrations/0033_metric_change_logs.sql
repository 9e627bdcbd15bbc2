-- The dashboard's aggregates (0010) take a write's changes in logs appended to, folded
-- into them in key order once a log holds a few thousand rows
-- (store/sqlite/metric_log.py), rather than an upsert of each bucket's row with each
-- write: in a backfill nearly every row a write changed was on a page of its own, and
-- every such page was written again to the WAL and copied by the checkpointer. A
-- reader adds a log's rows to the aggregates' (store/sqlite/metric_aggregates.py);
-- a delete of traces folds the logs first, so that the trigger taking a deleted trace
-- back finds its users' days.
CREATE TABLE metric_activity_log (
    project_id      INTEGER NOT NULL,
    last_hour       INTEGER NOT NULL,
    first_hour      INTEGER NOT NULL,
    traces          INTEGER NOT NULL,
    error_traces    INTEGER NOT NULL,
    cost_traces     INTEGER NOT NULL,
    cost_pico       INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL,
    sessions        INTEGER NOT NULL,
    error_sessions  INTEGER NOT NULL,
    cost_sessions   INTEGER NOT NULL
);

CREATE TABLE metric_user_day_log (
    project_id      INTEGER NOT NULL,
    day             INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    traces_active   INTEGER NOT NULL,
    traces          INTEGER NOT NULL,
    error_traces    INTEGER NOT NULL,
    cost_traces     INTEGER NOT NULL,
    cost_pico       INTEGER NOT NULL
);

CREATE TABLE metric_model_log (
    project_id      INTEGER NOT NULL,
    hour            INTEGER NOT NULL,
    model           TEXT NOT NULL,
    traces          INTEGER NOT NULL,
    cost_traces     INTEGER NOT NULL,
    cost_pico       INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    total_tokens    INTEGER NOT NULL
);
