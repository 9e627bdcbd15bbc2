-- Rollups that ClickHouse merges by itself: a write never reads.
--
-- An export is one insert into `span_intake`, a Null table (it keeps nothing); three
-- materialized views turn that insert into the span rows, one partial rollup row per
-- trace it touches, and the (session, trace) pairs. A trace's rollup is the merge of
-- all its partial rows, whichever server wrote them and in whatever order they became
-- visible. Every merge below is idempotent: a span delivered twice (a retried export,
-- the same export sent to two servers) changes nothing, because counts are of distinct
-- span ids, amounts are kept per span id, and the rest are the least or greatest of
-- values ranked by a total order. See docs/architecture.md.

CREATE TABLE IF NOT EXISTS span_intake (
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
    metadata        String,
    tags            String,
    name            String,
    kind            LowCardinality(String),
    span_type       LowCardinality(String),
    model           Nullable(String),
    scope           Nullable(String),
    status_message  Nullable(String),
    input_source    Nullable(String),
    output_source   Nullable(String),
    input           Nullable(String),
    output          Nullable(String),
    resource        String,
    events          String,
    attributes      String,
    -- What the rollup reads, made by the writer (store/clickhouse/intake.py): the tags
    -- as a list, each metadata entry as (key, value as JSON, value as filter text), and
    -- the previews. The input preview is made only for the span that may stand for its
    -- trace's input (the others carry NULL and never win; see intake.py).
    tag_list        Array(String),
    meta_entries    Array(Tuple(String, String, Nullable(String))),
    input_preview   Nullable(String),
    output_preview  Nullable(String)
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_from_intake TO spans AS
    SELECT project_id, trace_id, span_id, parent_span_id, start_ns, end_ns, status,
        input_tokens, output_tokens, total_tokens, cost_usd, session_id, user_id, metadata,
        tags, name, kind, span_type, model, scope, status_message, input_source,
        output_source, input, output, resource, events, attributes
    FROM span_intake;

-- Every session a trace has ever named, one row per (session, trace): how a session
-- finds its traces (the trace's merged rollup then says whether it is in it still).
-- Like `trace_sessions` of 0002, partitioned by month so that retention drops whole parts.
CREATE TABLE IF NOT EXISTS session_members (
    project_id  UInt64,
    session_id  String,
    trace_id    String,
    end_ns      Int64
) ENGINE = ReplacingMergeTree(end_ns)
PARTITION BY toYYYYMM(toDateTime(intDiv(end_ns, 1000000000)))
ORDER BY (project_id, session_id, trace_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS session_members_from_intake TO session_members AS
    SELECT project_id, assumeNotNull(session_id) AS session_id, trace_id, end_ns
    FROM span_intake WHERE session_id IS NOT NULL AND session_id != '';

INSERT INTO session_members
    SELECT project_id, assumeNotNull(session_id), trace_id, max(end_ns)
    FROM spans WHERE session_id IS NOT NULL AND session_id != ''
    GROUP BY project_id, session_id, trace_id;

-- Partial trace rollups. Sorted by trace, so a trace's parts merge into one row and a
-- trace is found by its id; partitioned by the month its part starts, so a time window
-- reads only its months and retention drops whole months. (By day, a lookup of many
-- traces by id, as a Sessions page makes, searched every day's index: measured.) Every column is a plain value
-- merged by a simple function (min, max, a set union), which reads far cheaper than
-- aggregate states. A "pick" is the least of tuples led by a rank, so it keeps the
-- fields of the span of lowest rank: the root is the span without a parent, else the
-- earliest (by start, then span id); "first" is the earliest that has the field (a
-- leading 1 marks a span without it, which loses); the output stands in from the
-- latest end.
CREATE TABLE IF NOT EXISTS trace_parts (
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
-- Small granules: a trace is read by its id (its page, its session's page), and a
-- default granule of 8192 rows of previews and arrays costs tens of ms to read for one.
SETTINGS index_granularity = 512;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_parts_from_intake TO trace_parts AS
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

-- When each trace part ran, sorted by start: how a time window finds its traces by
-- reading a range, not a whole month of trace parts.
CREATE TABLE IF NOT EXISTS trace_times (
    project_id  UInt64,
    start_ns    Int64,
    end_ns      Int64,
    trace_id    String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (project_id, start_ns);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_times_from_intake TO trace_times AS
    SELECT project_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns, trace_id
    FROM span_intake AS i GROUP BY project_id, trace_id;

INSERT INTO trace_times
    SELECT project_id, min(start_ns), max(end_ns), trace_id
    FROM spans GROUP BY project_id, trace_id;

-- Spans stored before this migration, rolled up once. Their input previews are the
-- input's first characters (the writer's rule needs Python); running it twice (two
-- servers migrating at once) changes nothing, every merge being idempotent.
INSERT INTO trace_parts
    SELECT
        project_id,
        trace_id,
        min(start_ns),
        max(end_ns),
        max(ingested_ns),
        groupUniqArray(span_id),
        groupUniqArrayIf(span_id, status = 'error'),
        min((isNotNull(parent_span_id), start_ns, span_id, name, session_id, user_id,
             substringUTF8(input, 1, 2000), isNotNull(input), substringUTF8(output, 1, 2000),
             isNotNull(output))),
        min((coalesce(session_id, '') = '', start_ns, span_id, coalesce(session_id, ''))),
        min((coalesce(user_id, '') = '', start_ns, span_id, coalesce(user_id, ''))),
        min((isNull(input), start_ns, span_id, substringUTF8(input, 1, 2000))),
        min((isNull(output), -end_ns, start_ns, span_id, substringUTF8(output, 1, 2000))),
        groupUniqArrayIf(
            (span_id, ingested_ns, coalesce(input_tokens, 0), coalesce(output_tokens, 0),
             coalesce(total_tokens, 0), cost_usd),
            isNotNull(input_tokens) OR isNotNull(output_tokens) OR isNotNull(total_tokens)
                OR isNotNull(cost_usd)),
        groupUniqArrayArray(arrayMap((tag, position) -> (start_ns, span_id,
            toUInt64(position), tag), JSONExtract(tags, 'Array(String)'),
            arrayEnumerate(JSONExtract(tags, 'Array(String)')))),
        groupUniqArrayArray(arrayMap(entry -> (start_ns, span_id, entry.1, entry.2,
            if(JSONType(entry.2) = 'String', JSONExtractString(entry.2),
               if(JSONType(entry.2) = 'Null', NULL, entry.2))),
            JSONExtractKeysAndValuesRaw(metadata)))
    FROM spans
    GROUP BY project_id, trace_id
