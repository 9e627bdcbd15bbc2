-- The dashboard's figures per five-minute slice, derived in the background from the merged trace
-- and session rollups (store/clickhouse/metric_slices.py; docs/architecture.md,
-- "Dashboard metrics").
--
-- 1. One row per (project, slice) of the traces and sessions whose first active
-- instant (start_ns + 999) falls in that five-minute slice: what they add to the
-- dashboard, as arrays small enough to read a month of in one go. Every bucket is whole
-- hours, so a slice lies in one bucket. Each refresh of a slice inserts the whole slice
-- again with a newer version; the newest replaces the others (FINAL when read, merges
-- in the background), so a slice refreshed twice, by two servers at once, or from a
-- lagging replica and later again, converges to the newest computation. Five minutes,
-- not an hour, so that refreshing the slice live traffic writes to costs five minutes
-- of traffic. `last_hour` is the latest hour any of its rows was active in, which is
-- how a range finds the rows that started before it and ran into it.
CREATE TABLE IF NOT EXISTS metric_slices (
    project_id  UInt64,
    slice       Int64,
    version     Int64,
    last_hour   Int64,
    -- What the slice's traces add up to, per last active hour: (last hour, traces,
    -- error traces, cost, input, output, total tokens).
    trace_counts Array(Tuple(Int64, UInt64, UInt64, Nullable(Float64), Int64, Int64, Int64)),
    -- The same for the traces that name a user, per (user, last hour): (user, last
    -- hour, traces, error traces, cost). Active users and the top users read these.
    users       Array(Tuple(LowCardinality(String), Int64, UInt64, UInt64, Nullable(Float64))),
    -- The slice's sessions per last active hour: (last hour, sessions, with an error).
    session_counts Array(Tuple(Int64, UInt64, UInt64)),
    -- Each of the slice's sessions' (last hour, traces, duration, cost): the
    -- distributions' figures.
    session_figures Array(Tuple(Int64, UInt64, Int64, Nullable(Float64))),
    -- (session id, start, end, traces, error traces, cost) of the slice's sessions: all
    -- of them, and the ten costliest and ten with most errors, which is all a range
    -- that holds the whole slice reads for its top lists.
    sessions    Array(Tuple(String, Int64, Int64, UInt64, UInt64, Nullable(Float64))),
    top_sessions Array(Tuple(String, Int64, Int64, UInt64, UInt64, Nullable(Float64))),
    -- The first of the slice's sessions by (cost, session id) and by (errors, session
    -- id), as the top lists rank them ((0, '') when none has any): a range's tenth
    -- largest of these bounds its top ten from below, so it reads the top lists of
    -- only the ten or so slices that reach it.
    top_cost    Tuple(Float64, String),
    top_errors  Tuple(UInt64, String),
    -- (model, traces with a cost, cost in picodollars, input, output, total tokens) of
    -- the slice's traces' usage by model.
    models      Array(Tuple(String, UInt64, Int64, Int64, Int64, Int64)),
    -- The end of its last hour: what retention's TTL expires a slice by
    -- (schema.RETAINED_TABLES), as it expires the trace data by its end.
    end_ns      Int64 MATERIALIZED (last_hour + 1) * 3600000000000 - 1
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, slice)
-- A month is some 8,640 rows: small granules let a read skip the columns of the slices
-- it does not need (the full session lists of all but the slices before its range).
SETTINGS index_granularity = 64;

-- 2. Slices that a delete changed: a delete removes the rows a refresh would find its
-- slices by, so it names them here (ingest needs none: its trace parts carry the time
-- they were written).
CREATE TABLE IF NOT EXISTS metric_dirty_slices (
    project_id  UInt64,
    slice       Int64,
    marked_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = MergeTree
ORDER BY (marked_ns)
TTL toDateTime(intDiv(marked_ns, 1000000000)) + toIntervalDay(7);

-- 3. The refresh passes: each server's pass inserts when it began (the ClickHouse
-- server's clock) and the write time from which the next pass looks for changes (its
-- start less the margin for replica lag). One row is all that matters: the newest.
CREATE TABLE IF NOT EXISTS metric_passes (
    began_ns    Int64,
    watermark_ns Int64
) ENGINE = ReplacingMergeTree(began_ns)
ORDER BY tuple();

-- 4. A refresh finds the traces written since its watermark by their parts' write
-- time; old merged parts hold only old writes, and this index skips them.
ALTER TABLE trace_parts_by_id ADD INDEX IF NOT EXISTS written_minmax written_ns
    TYPE minmax GRANULARITY 16;

ALTER TABLE trace_parts_by_id MATERIALIZE INDEX written_minmax
