-- The Sessions list and the detail pages at any size (docs/architecture.md).
--
-- 1. The trace parts of 0010 again, as `trace_parts_by_id`, in small granules and small
-- compressed blocks. A page reads its traces by id, each from anywhere in the table:
-- with 512-row granules in blocks of 64 kB and more, every trace read decompressed a
-- block of each of some forty column streams (the tuples' elements are streams of their
-- own), for a few hundred bytes it needed. 64-row granules in blocks of 4 to 16 kB read
-- a page's hundred traces in 40 % of the time (measured: docs/benchmarks.md). The
-- columns and the view are those of 0010; only the target and the layout change.
--
-- The order keeps every row: the new view first (an export from then on goes to both
-- tables), then the copy of the old table (a part copied twice merges into one, every
-- merge being idempotent), then the old view goes and the old table is emptied. Two
-- servers running this at once do no harm in any interleaving.
CREATE TABLE IF NOT EXISTS trace_parts_by_id (
    project_id      UInt64,
    trace_id        String,
    start_ns        SimpleAggregateFunction(min, Int64),
    end_ns          SimpleAggregateFunction(max, Int64),
    written_ns      SimpleAggregateFunction(max, Int64),
    span_ids        SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    error_span_ids  SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    -- (has a parent, start, span id, name, session, user, input preview, has input,
    -- output preview, has output) of the root.
    root            SimpleAggregateFunction(min,
                        Tuple(UInt8, Int64, String, String, Nullable(String),
                              Nullable(String), Nullable(String), UInt8, Nullable(String),
                              UInt8)),
    -- (lacks it, start, span id, value) of the first span with a session, a user, an input.
    first_session   SimpleAggregateFunction(min, Tuple(UInt8, Int64, String, String)),
    first_user      SimpleAggregateFunction(min, Tuple(UInt8, Int64, String, String)),
    first_input     SimpleAggregateFunction(min,
                        Tuple(UInt8, Int64, String, Nullable(String))),
    -- (lacks it, -end, start, span id, preview) of the latest-ending span with an output.
    last_output     SimpleAggregateFunction(min,
                        Tuple(UInt8, Int64, Int64, String, Nullable(String))),
    -- (span id, written, input, output, total tokens, cost) of the spans that carry
    -- any; reads take each span's first written copy, as SQLite keeps a span's first.
    amounts         SimpleAggregateFunction(groupUniqArrayArray,
                        Array(Tuple(String, Int64, Int64, Int64, Int64, Nullable(Float64)))),
    -- (start, span id, position, tag) and (start, span id, key, JSON, text).
    tag_entries     SimpleAggregateFunction(groupUniqArrayArray,
                        Array(Tuple(Int64, String, UInt64, String))),
    meta_entries    SimpleAggregateFunction(groupUniqArrayArray,
                        Array(Tuple(Int64, String, String, String, Nullable(String))))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (project_id, trace_id)
SETTINGS index_granularity = 64, min_compress_block_size = 4096,
    max_compress_block_size = 16384;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_parts_by_id_from_intake TO trace_parts_by_id AS
    SELECT
        project_id,
        trace_id,
        min(i.start_ns) AS start_ns,
        max(i.end_ns) AS end_ns,
        max(toUnixTimestamp64Nano(now64(9))) AS written_ns,
        groupUniqArray(i.span_id) AS span_ids,
        groupUniqArrayIf(i.span_id, i.status = 'error') AS error_span_ids,
        min((isNotNull(i.parent_span_id), i.start_ns, i.span_id, i.name, i.session_id,
             i.user_id, i.input_preview, isNotNull(i.input), i.output_preview,
             isNotNull(i.output))) AS root,
        min((coalesce(i.session_id, '') = '', i.start_ns, i.span_id,
             coalesce(i.session_id, ''))) AS first_session,
        min((coalesce(i.user_id, '') = '', i.start_ns, i.span_id, coalesce(i.user_id, '')))
            AS first_user,
        min((isNull(i.input), i.start_ns, i.span_id, i.input_preview)) AS first_input,
        min((isNull(i.output), -i.end_ns, i.start_ns, i.span_id, i.output_preview))
            AS last_output,
        groupUniqArrayIf(
            (i.span_id, toUnixTimestamp64Nano(now64(9)), coalesce(i.input_tokens, 0),
             coalesce(i.output_tokens, 0), coalesce(i.total_tokens, 0), i.cost_usd),
            isNotNull(i.input_tokens) OR isNotNull(i.output_tokens)
                OR isNotNull(i.total_tokens) OR isNotNull(i.cost_usd)) AS amounts,
        groupUniqArrayArray(arrayMap((tag, position) -> (i.start_ns, i.span_id,
            toUInt64(position), tag), i.tag_list, arrayEnumerate(i.tag_list))) AS tag_entries,
        groupUniqArrayArray(arrayMap(entry -> (i.start_ns, i.span_id, entry.1,
            entry.2, entry.3), i.meta_entries)) AS meta_entries
    FROM span_intake AS i
    GROUP BY project_id, trace_id;

INSERT INTO trace_parts_by_id SELECT * FROM trace_parts;

DROP VIEW IF EXISTS trace_parts_from_intake;

TRUNCATE TABLE IF EXISTS trace_parts;

-- 2. When each trace part ended, and which session it names, sorted by end: how the
-- Sessions list finds the sessions active lately by reading a range of narrow rows,
-- not by merging every candidate trace's parts (store/clickhouse/recent_sessions.py).
--
-- One row per trace per export (a plain MergeTree: never merged into one row); a read
-- groups a trace's rows, with min and max, so a row delivered twice changes nothing.
-- `root` is (has a parent, start, span id, session) of the part's least span in the
-- root order of trace_parts, `first_session` (lacks one, start, span id, session) of
-- its earliest span naming a session: merged, they name the trace's session by the
-- rule of trace_parts. Partitioned by the month the part ended, so that retention drops
-- whole parts.
CREATE TABLE IF NOT EXISTS trace_activity (
    project_id      UInt64,
    end_ns          Int64,
    start_ns        Int64,
    trace_id        String,
    root            Tuple(UInt8, Int64, String, String),
    first_session   Tuple(UInt8, Int64, String, String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(end_ns, 1000000000)))
ORDER BY (project_id, end_ns);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_activity_from_intake TO trace_activity AS
    SELECT
        project_id,
        max(i.end_ns) AS end_ns,
        min(i.start_ns) AS start_ns,
        trace_id,
        min((isNotNull(i.parent_span_id), i.start_ns, i.span_id, coalesce(i.session_id, '')))
            AS root,
        min((coalesce(i.session_id, '') = '', i.start_ns, i.span_id,
             coalesce(i.session_id, ''))) AS first_session
    FROM span_intake AS i
    GROUP BY project_id, trace_id;

-- Traces stored before this migration, one row each from their merged parts (running
-- it twice, or beside live inserts, changes no read: reads take min and max).
INSERT INTO trace_activity
    SELECT project_id, max(end_ns), min(start_ns), trace_id,
        (tupleElement(min(root), 1), tupleElement(min(root), 2), tupleElement(min(root), 3),
         coalesce(tupleElement(min(root), 5), '')),
        min(first_session)
    FROM trace_parts_by_id
    GROUP BY project_id, trace_id
