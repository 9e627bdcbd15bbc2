-- Where each trace's parts lie in time, found by its id: the earliest start and the
-- latest end of all its spans, merged by min and max (a write never reads; a span sent
-- twice, or parts in any order, change nothing).
--
-- The tables a page reads its traces from by id (trace_parts_packed, spans) are
-- partitioned by the month a part or span starts, and sorted by trace id: without a
-- time condition a lookup searches every part of every month for each id. Repeated,
-- ClickHouse's query condition cache hides that; a page read for the first time pays it
-- (docs/benchmarks.md). Every part of a trace starts within this range, so a read
-- bounded by it opens only the parts of the trace's own months.
--
-- Not partitioned, so that a lookup by id searches the few parts merges leave, however
-- many months are kept: one narrow row a trace, in small granules and small compressed
-- blocks (a lookup decompresses little more than its own rows, as trace_parts_packed's
-- do). It expires row by row with the trace (schema.RETAINED_TABLES), as trace_context
-- does.
CREATE TABLE IF NOT EXISTS trace_spans_range (
    project_id  UInt64,
    trace_id    String,
    start_ns    SimpleAggregateFunction(min, Int64),
    end_ns      SimpleAggregateFunction(max, Int64)
) ENGINE = AggregatingMergeTree
ORDER BY (project_id, trace_id)
SETTINGS index_granularity = 64, min_compress_block_size = 1024,
    max_compress_block_size = 4096;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_spans_range_from_intake TO trace_spans_range AS
    SELECT project_id, trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
    FROM span_intake AS i
    GROUP BY project_id, trace_id;

-- Traces stored before this migration (the view first: an export from then on is kept
-- too; a trace copied twice, or beside live inserts, merges into the same range).
INSERT INTO trace_spans_range
    SELECT project_id, trace_id, min(start_ns), max(end_ns)
    FROM trace_times
    GROUP BY project_id, trace_id
