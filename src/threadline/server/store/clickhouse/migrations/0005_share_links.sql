-- Read-only links to one session or trace, by the SHA-256 digest (hex) of their token.
-- Revoking inserts the link's row again with is_revoked = 1; that version wins in merges
-- and in reads, as for API keys.
CREATE TABLE IF NOT EXISTS share_links (
    id             String,
    project_id     UInt64,
    token_hash     String,
    kind           LowCardinality(String),
    target_id      String,
    created_ns     Int64,
    expires_ns     Int64,
    revoked_ns     Nullable(Int64),
    hide_io        UInt8,
    hide_metadata  Array(String),
    is_revoked     UInt8
) ENGINE = ReplacingMergeTree(is_revoked)
ORDER BY id
