-- A project's choice to infer sessions for traces without a session id (on without a
-- row); the newest row wins, in merges and in reads.
CREATE TABLE IF NOT EXISTS session_inference (
    project_id   UInt64,
    enabled      UInt8,
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY project_id
