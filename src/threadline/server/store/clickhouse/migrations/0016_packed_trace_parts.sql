-- The trace parts that pages and details read by id, packed: each part's aggregates of
-- trace_parts_by_id (0011) as one JSON array in one column (docs/architecture.md).
--
-- A page reads its hundred traces by id, each from its own granule; with the aggregates
-- in some forty column streams (a tuple's elements are streams of their own), every
-- trace cost the decompression of a block of each stream, for a few hundred bytes it
-- needed. Packed, a trace's part is one string in one stream, and granules of a few rows
-- (index_granularity_bytes) decompress little more than the page's own rows: a page's
-- hundred traces cost a quarter of the engine CPU (measured: docs/benchmarks.md).
--
-- Every column merges as trace_parts_by_id's do, idempotent and in any order: `rollup`
-- and `labels` are the union of the parts' strings (a part delivered twice is one
-- string), which the reader merges by trace_parts_by_id's rules (merged_traces.py).
-- `rollup` holds (start, end, span ids, failed span ids, root, first session, first
-- user, first input, last output, amounts), `labels` (tag entries, metadata entries),
-- each as trace_parts_by_id has them; a Sessions page reads `rollup` only. trace_parts_by_id
-- stays: the filters and sorts merge its columns in SQL.
--
-- The new view first (an export from then on is packed too), then the copy of what is
-- stored (a part copied twice is one more string that changes no merge).
CREATE TABLE IF NOT EXISTS trace_parts_packed (
    project_id      UInt64,
    trace_id        String,
    start_ns        SimpleAggregateFunction(min, Int64),
    end_ns          SimpleAggregateFunction(max, Int64),
    rollup          SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    labels          SimpleAggregateFunction(groupUniqArrayArray, Array(String))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (project_id, trace_id)
SETTINGS index_granularity = 64, index_granularity_bytes = 4096,
    min_compress_block_size = 1024, max_compress_block_size = 4096;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_parts_packed_from_intake TO trace_parts_packed AS
    SELECT
        project_id,
        trace_id,
        min(i.start_ns) AS start_ns,
        max(i.end_ns) AS end_ns,
        [toJSONString((
            min(i.start_ns),
            max(i.end_ns),
            groupUniqArray(i.span_id),
            groupUniqArrayIf(i.span_id, i.status = 'error'),
            min((isNotNull(i.parent_span_id), i.start_ns, i.span_id, i.name, i.session_id,
                 i.user_id, i.input_preview, isNotNull(i.input), i.output_preview,
                 isNotNull(i.output))),
            min((coalesce(i.session_id, '') = '', i.start_ns, i.span_id,
                 coalesce(i.session_id, ''))),
            min((coalesce(i.user_id, '') = '', i.start_ns, i.span_id, coalesce(i.user_id, ''))),
            min((isNull(i.input), i.start_ns, i.span_id, i.input_preview)),
            min((isNull(i.output), -i.end_ns, i.start_ns, i.span_id, i.output_preview)),
            groupUniqArrayIf(
                (i.span_id, toUnixTimestamp64Nano(now64(9)), coalesce(i.input_tokens, 0),
                 coalesce(i.output_tokens, 0), coalesce(i.total_tokens, 0), i.cost_usd),
                isNotNull(i.input_tokens) OR isNotNull(i.output_tokens)
                    OR isNotNull(i.total_tokens) OR isNotNull(i.cost_usd))))] AS rollup,
        [toJSONString((
            groupUniqArrayArray(arrayMap((tag, position) -> (i.start_ns, i.span_id,
                toUInt64(position), tag), i.tag_list, arrayEnumerate(i.tag_list))),
            groupUniqArrayArray(arrayMap(entry -> (i.start_ns, i.span_id, entry.1,
                entry.2, entry.3), i.meta_entries))))] AS labels
    FROM span_intake AS i
    GROUP BY project_id, trace_id;

INSERT INTO trace_parts_packed
    SELECT project_id, trace_id, start_ns, end_ns,
        [toJSONString((start_ns, end_ns, span_ids, error_span_ids, root, first_session,
                       first_user, first_input, last_output, amounts))],
        [toJSONString((tag_entries, meta_entries))]
    FROM trace_parts_by_id
