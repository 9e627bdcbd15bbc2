-- The Users list over a time window without merging every trace part of it
-- (store/clickhouse/user_activity.py; docs/architecture.md).
--
-- A user's totals are those of the traces whose merged user is theirs, and a trace's
-- user, like its session, is known only from all its exports (the root's user, else the
-- earliest span naming one; the root often arrives last, the model spans that carry the
-- tokens first). So no export can add to a user's totals by itself: what an export can
-- write without reading is its own part of each trace, narrow, sorted by time. One row
-- per trace per export (a plain MergeTree, never merged into one row): a read takes a
-- window's range, groups each trace's rows (min, max, and each span's first copy of its
-- amounts, so a row delivered twice changes nothing) and then the traces by user.
--
-- `root` is (has a parent, start, span id, session, user) of the part's least span in
-- the root order of trace_parts_by_id, `first_session` and `first_user` (lacks one,
-- start, span id, value) of its earliest span naming one; `failed` whether any of its
-- spans failed; `amounts` (span id, written, input, output, total tokens, cost) of its
-- spans that carry any. Sorted and partitioned by the part's end, so that a window is a
-- range and retention drops whole parts.
CREATE TABLE IF NOT EXISTS user_activity (
    project_id      UInt64,
    end_ns          Int64,
    start_ns        Int64,
    trace_id        String,
    root            Tuple(UInt8, Int64, String, String, String),
    first_session   Tuple(UInt8, Int64, String, String),
    first_user      Tuple(UInt8, Int64, String, String),
    failed          UInt8,
    amounts         Array(Tuple(String, Int64, Int64, Int64, Int64, Nullable(Float64)))
) ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(end_ns, 1000000000)))
ORDER BY (project_id, end_ns);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_activity_from_intake TO user_activity AS
    SELECT
        project_id,
        max(i.end_ns) AS end_ns,
        min(i.start_ns) AS start_ns,
        trace_id,
        min((isNotNull(i.parent_span_id), i.start_ns, i.span_id, coalesce(i.session_id, ''),
             coalesce(i.user_id, ''))) AS root,
        min((coalesce(i.session_id, '') = '', i.start_ns, i.span_id,
             coalesce(i.session_id, ''))) AS first_session,
        min((coalesce(i.user_id, '') = '', i.start_ns, i.span_id, coalesce(i.user_id, '')))
            AS first_user,
        max(i.status = 'error') AS failed,
        groupUniqArrayIf(
            (i.span_id, toUnixTimestamp64Nano(now64(9)), coalesce(i.input_tokens, 0),
             coalesce(i.output_tokens, 0), coalesce(i.total_tokens, 0), i.cost_usd),
            isNotNull(i.input_tokens) OR isNotNull(i.output_tokens)
                OR isNotNull(i.total_tokens) OR isNotNull(i.cost_usd)) AS amounts
    FROM span_intake AS i
    GROUP BY project_id, trace_id;

-- Traces stored before this migration, one row each from their merged parts (running
-- it twice, or beside live inserts, changes no read: reads merge a trace's rows).
INSERT INTO user_activity
    SELECT project_id, max(end_ns), min(start_ns), trace_id,
        (tupleElement(min(root), 1), tupleElement(min(root), 2), tupleElement(min(root), 3),
         coalesce(tupleElement(min(root), 5), ''), coalesce(tupleElement(min(root), 6), '')),
        min(first_session), min(first_user),
        notEmpty(groupUniqArrayArray(error_span_ids)), groupUniqArrayArray(amounts)
    FROM trace_parts_by_id
    GROUP BY project_id, trace_id
