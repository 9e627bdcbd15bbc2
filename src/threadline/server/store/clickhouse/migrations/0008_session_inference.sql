-- A project's choice to infer sessions for traces without a session id (on without a
-- row); the newest row wins, in merges and in reads.
CREATE TABLE IF NOT EXISTS session_inference (
    project_id   UInt64,
    enabled      UInt8,
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY project_id;

-- Context use (store/clickhouse/context.py): per trace, the largest share of its model's
-- context window one of its spans filled, written by the writer with each export (the
-- window comes from genai-prices, in Python) and merged by max.
CREATE TABLE IF NOT EXISTS trace_context (
    project_id   UInt64,
    trace_id     String,
    context_use  SimpleAggregateFunction(max, Float64)
) ENGINE = AggregatingMergeTree
ORDER BY (project_id, trace_id)
