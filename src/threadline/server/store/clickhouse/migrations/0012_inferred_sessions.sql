-- Sessions inferred without reading back (store/clickhouse/inferred_sessions.py): the
-- signals that grouped each inferred session, one row per (session, signal), and the
-- session of each Responses API response id a turn received (by its key, in hex), which
-- the turn asking for it as its previous response joins. Both are written with the
-- export, without a read before; a row written twice merges away.
CREATE TABLE IF NOT EXISTS inferred_sessions (
    project_id  UInt64,
    session_id  String,
    signal      LowCardinality(String)
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, session_id, signal);

CREATE TABLE IF NOT EXISTS response_sessions (
    project_id    UInt64,
    response_key  String,
    session_id    String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, response_key, session_id)
