-- Which sessions each trace has ever been in, kept apart from the trace rollups: merges
-- of `traces` keep only a trace's newest rollup, and with it only its current session,
-- but a session a trace has left must still be recomputed (and its version must still
-- count that trace) when the trace changes. One row per (session, trace), filled by a
-- materialized view as part of every insert into `traces`, so ingest makes no extra
-- round trip; sorted by session, it is also how a session finds its traces.
CREATE TABLE IF NOT EXISTS trace_sessions (
    project_id  UInt64,
    session_id  String,
    trace_id    String,
    end_ns      Int64
) ENGINE = ReplacingMergeTree(end_ns)
ORDER BY (project_id, session_id, trace_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_sessions_on_insert TO trace_sessions AS
    SELECT project_id, assumeNotNull(session_id) AS session_id, trace_id, end_ns
    FROM traces WHERE session_id IS NOT NULL;

-- Traces rolled up before this migration. Running it twice (two servers migrating at
-- once) inserts rows that merge into one.
INSERT INTO trace_sessions
    SELECT project_id, assumeNotNull(session_id), trace_id, max(end_ns)
    FROM traces WHERE session_id IS NOT NULL GROUP BY project_id, session_id, trace_id;

-- Sessions find their traces through trace_sessions now: the bloom filter on
-- traces.session_id of 0001 would only cost inserts.
ALTER TABLE traces DROP INDEX IF EXISTS traces_by_session
