-- Evaluators, their runs and totals. Append-only like every table here: a change is a
-- new row with a higher version, and reads pick each row's newest version.

-- online_since_ns: when the evaluator was last switched on; its sweep marks are kept
-- per switch-on, so one switched off and on again does not judge what ended meanwhile.
CREATE TABLE IF NOT EXISTS evaluators (
    project_id       UInt64,
    name             String,
    definition       String,
    online           UInt8,
    online_since_ns  Int64,
    created_ns       Int64,
    deleted          UInt8,
    version          Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, name);

-- How far the sweep for ended sessions has gone: only ever moves forward, so the
-- highest mark is the one that stands.
CREATE TABLE IF NOT EXISTS evaluator_sweeps (
    project_id       UInt64,
    name             String,
    online_since_ns  Int64,
    swept_until_ns   Int64
) ENGINE = ReplacingMergeTree(swept_until_ns)
ORDER BY (project_id, name, online_since_ns);

-- One row per state of a run. Versions order the states: a queued run is 1, a claim
-- or a release is the time it happened, and a finished run is 2^61 + its time, so a
-- finish always outranks a claim or release that a slower process writes after it.
CREATE TABLE IF NOT EXISTS evaluation_runs (
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

-- Per evaluator name, summed by ClickHouse as finished runs are inserted.
CREATE TABLE IF NOT EXISTS evaluation_totals (
    project_id     UInt64,
    evaluator      String,
    runs_done      UInt64,
    runs_failed    UInt64,
    input_tokens   UInt64,
    output_tokens  UInt64,
    cost_usd       Float64,
    costed_runs    UInt64
) ENGINE = SummingMergeTree
ORDER BY (project_id, evaluator);

CREATE MATERIALIZED VIEW IF NOT EXISTS evaluation_totals_on_finish TO evaluation_totals AS
    SELECT project_id, evaluator,
        toUInt64(status = 'done') AS runs_done,
        toUInt64(status != 'done') AS runs_failed,
        toUInt64(ifNull(input_tokens, 0)) AS input_tokens,
        toUInt64(ifNull(output_tokens, 0)) AS output_tokens,
        ifNull(cost_usd, 0) AS cost_usd,
        toUInt64(cost_usd IS NOT NULL) AS costed_runs
    FROM evaluation_runs WHERE version >= 2305843009213693952
