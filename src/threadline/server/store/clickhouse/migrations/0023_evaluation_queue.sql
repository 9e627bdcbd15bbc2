-- The evaluation queue: the states of the runs not finished yet, so that a claim and
-- every poll of an empty queue read the queue instead of every run ever queued
-- (store/clickhouse/evaluations.py). Every row inserted into evaluation_runs is copied
-- here by the view below, so a run's newest state here is its newest state there; a
-- finished run's rows (its finished version with the rest) are deleted from here now
-- and then, all together, so what is left of any run is all its states or none.
CREATE TABLE IF NOT EXISTS evaluation_queue (
    project_id        UInt64,
    id                String,
    evaluator         String,
    target_kind       String,
    target_id         String,
    session_id        Nullable(String),
    trigger           String,
    status            String,
    reason            Nullable(String),
    attempts          UInt32,
    score_id          Nullable(String),
    input_tokens      Nullable(Int64),
    output_tokens     Nullable(Int64),
    cost_usd          Nullable(Float64),
    created_ns        Int64,
    finished_ns       Nullable(Int64),
    claimed_until_ns  Nullable(Int64),
    claimed_by        String,
    version           Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS evaluation_queue_from_runs TO evaluation_queue AS
    SELECT * FROM evaluation_runs;

-- The runs unfinished before this migration, as their newest state (running it twice,
-- or beside live inserts, changes no run's newest state).
INSERT INTO evaluation_queue
    SELECT project_id, id, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
        row.10, row.11, row.12, row.13, row.14, row.15, row.16, newest
    FROM (
        SELECT project_id, id, max(version) AS newest,
            argMax((evaluator, target_kind, target_id, session_id, trigger, status, reason,
                attempts, score_id, input_tokens, output_tokens, cost_usd, created_ns,
                finished_ns, claimed_until_ns, claimed_by), version) AS row
        FROM evaluation_runs GROUP BY project_id, id
    )
    WHERE row.6 IN ('pending', 'running');
