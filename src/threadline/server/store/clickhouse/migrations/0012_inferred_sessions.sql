-- Sessions inferred without reading back (store/clickhouse/inferred_sessions.py): the
-- session of each Responses API response id a turn received (by its key, in hex), which
-- the turn asking for it as its previous response joins. Written with the export,
-- without a read before; a row written twice merges away.
CREATE TABLE IF NOT EXISTS response_sessions (
    project_id    UInt64,
    response_key  String,
    session_id    String
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, response_key, session_id)
