-- Threadline's ClickHouse schema, version 1. Statements are separated by ";" lines.
-- Every table is a ReplacingMergeTree: rows are only ever inserted, a newer version of
-- a row replaces an older one when parts merge, and every read picks the newest
-- version itself (argMax / LIMIT 1 BY), so it never depends on merges having run.

-- Projects, one row per name. The id is derived from the name, so two servers creating
-- the same project at once insert the same row.
CREATE TABLE IF NOT EXISTS projects (
    id          UInt64,
    name        String,
    created_ns  Int64
) ENGINE = ReplacingMergeTree
ORDER BY name;

-- API keys as SHA-256 digests (hex) only. Revoking inserts the key's row again with
-- is_revoked = 1; that version wins in merges and in reads.
CREATE TABLE IF NOT EXISTS api_keys (
    id          UInt64,
    project_id  UInt64,
    key_hash    String,
    prefix      String,
    scope       LowCardinality(String),
    created_ns  Int64,
    revoked_ns  Nullable(Int64),
    is_revoked  UInt8
) ENGINE = ReplacingMergeTree(is_revoked)
ORDER BY id;

-- One row per span, idempotent on (project_id, trace_id, span_id): that is the sort
-- key, so a retried span collapses into one row in merges, and reads take one row per
-- span id until then. The sort key serves the only span reads there are (a trace's
-- spans, for its detail and its rollup); listing by time reads the rollup tables.
-- Monthly partitions by start time make retention drop whole parts.
CREATE TABLE IF NOT EXISTS spans (
    project_id      UInt64,
    trace_id        String,
    span_id         String,
    parent_span_id  Nullable(String),
    start_ns        Int64,
    end_ns          Int64,
    status          LowCardinality(String),
    input_tokens    Nullable(Int64),
    output_tokens   Nullable(Int64),
    total_tokens    Nullable(Int64),
    cost_usd        Nullable(Float64),
    session_id      Nullable(String),
    user_id         Nullable(String),
    metadata        String CODEC(ZSTD(3)),
    tags            String CODEC(ZSTD(3)),
    name            String,
    kind            LowCardinality(String),
    span_type       LowCardinality(String),
    model           Nullable(String),
    scope           Nullable(String),
    status_message  Nullable(String) CODEC(ZSTD(3)),
    input_source    Nullable(String),
    output_source   Nullable(String),
    input           Nullable(String) CODEC(ZSTD(3)),
    output          Nullable(String) CODEC(ZSTD(3)),
    resource        String CODEC(ZSTD(3)),
    events          String CODEC(ZSTD(3)),
    attributes      String CODEC(ZSTD(3)),
    ingested_ns     Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (project_id, trace_id, span_id);

-- Trace rollups. Ingest recomputes a trace from all of its stored spans after its own
-- insert and inserts the result; the version is the number of spans it saw. Spans
-- are never removed, so a rollup computed later saw a superset: the highest span_count
-- is the most complete rollup, and equal counts mean the same spans, the same rollup.
-- written_ns (the ClickHouse server's clock) is the live feed's position.
CREATE TABLE IF NOT EXISTS traces (
    project_id      UInt64,
    trace_id        String,
    session_id      Nullable(String),
    user_id         Nullable(String),
    name            String,
    start_ns        Int64,
    end_ns          Int64,
    span_count      UInt64,
    error_count     UInt64,
    input_tokens    Int64,
    output_tokens   Int64,
    total_tokens    Int64,
    cost_usd        Nullable(Float64),
    status          LowCardinality(String),
    tags            Array(String),
    metadata        String CODEC(ZSTD(3)),
    metadata_text   Map(String, String) CODEC(ZSTD(3)),
    input_preview   Nullable(String) CODEC(ZSTD(3)),
    output_preview  Nullable(String) CODEC(ZSTD(3)),
    written_ns      Int64 DEFAULT toUnixTimestamp64Nano(now64(9)),
    INDEX traces_by_session session_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree(span_count)
ORDER BY (project_id, trace_id);

-- Session rollups. The version is the sum of the newest span counts of every trace
-- that ever belonged to the session: it only grows as spans arrive, and the rollup
-- with the highest version was computed from the newest rollup of every such trace.
-- trace_count = 0 marks a session whose every trace moved to another session.
CREATE TABLE IF NOT EXISTS sessions (
    project_id      UInt64,
    session_id      String,
    version         UInt64,
    trace_count     UInt64,
    span_count      UInt64,
    start_ns        Int64,
    end_ns          Int64,
    input_tokens    Int64,
    output_tokens   Int64,
    total_tokens    Int64,
    cost_usd        Nullable(Float64),
    error_count     UInt64,
    user_ids        String,
    first_input     Nullable(String) CODEC(ZSTD(3)),
    last_output     Nullable(String) CODEC(ZSTD(3))
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, session_id)
