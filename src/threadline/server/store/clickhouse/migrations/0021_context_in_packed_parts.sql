-- A trace's context use carried in its packed parts (trace_parts_packed, 0016), so that
-- a read by id (a Sessions page, a detail) finds it in the rows it reads anyway instead
-- of looking the same ids up again in trace_context: that second lookup cost a page as
-- much engine CPU as the packed parts' own read where traces have a context use
-- (docs/benchmarks.md).
--
-- The writer computes the context use in Python (context.py) and inserts it into
-- trace_context; a view copies each row into trace_parts_packed as a part without rollup
-- or labels (empty arrays: the unions ignore them), in the partition of the same
-- export's spans of the trace (their earliest start, written with the row; a row from a
-- writer that does not send it yet takes its end), merged there by max. trace_context
-- stays: the filters and sorts join it in SQL (queries.py).
ALTER TABLE trace_parts_packed
    ADD COLUMN IF NOT EXISTS context_use SimpleAggregateFunction(max, Nullable(Float64));

ALTER TABLE trace_context
    ADD COLUMN IF NOT EXISTS start_ns SimpleAggregateFunction(min, Int64) DEFAULT end_ns;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_parts_packed_from_context TO trace_parts_packed AS
    SELECT project_id, trace_id, start_ns, end_ns, CAST([], 'Array(String)') AS rollup,
        CAST([], 'Array(String)') AS labels, toNullable(context_use) AS context_use
    FROM trace_context;

-- What is stored already, after the view (a row written meanwhile is copied twice,
-- which a max does not see). Rows stored before this migration have no start: they take
-- their end, a partition their trace's parts may not be in (a read by id finds them
-- wherever they are).
INSERT INTO trace_parts_packed (project_id, trace_id, start_ns, end_ns, rollup, labels,
        context_use)
    SELECT project_id, trace_id, min(start_ns), max(end_ns), CAST([], 'Array(String)'),
        CAST([], 'Array(String)'), toNullable(max(context_use))
    FROM trace_context
    GROUP BY project_id, trace_id
    SETTINGS max_partitions_per_insert_block = 0
