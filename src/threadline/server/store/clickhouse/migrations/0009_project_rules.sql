-- A project's own data rules, each replaced as a whole (the newest row wins, as for
-- project_origins): its retention days (NULL: the server's --retention-days; 0:
-- forever) and its redaction rules (JSON of server/redaction/rules.py; '' for none).
CREATE TABLE IF NOT EXISTS project_retention (
    project_id   UInt64,
    days         Nullable(Int32),
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY project_id;

CREATE TABLE IF NOT EXISTS redaction_rules (
    project_id   UInt64,
    rules        String,
    written_ns   Int64 DEFAULT toUnixTimestamp64Nano(now64(9))
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY project_id
