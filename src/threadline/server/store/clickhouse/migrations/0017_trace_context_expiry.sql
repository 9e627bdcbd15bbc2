-- When a trace's context use expires (schema.RETAINED_TABLES): the end of the trace's
-- latest span seen with it, merged by max as the context use is. Rows written before
-- this column existed, or by a server that does not write it yet, take the time they
-- are first stored or merged: they expire the retention's days after that, never before
-- their trace.
ALTER TABLE trace_context
    ADD COLUMN IF NOT EXISTS end_ns SimpleAggregateFunction(max, Int64)
    DEFAULT toUnixTimestamp64Nano(now64(9));
