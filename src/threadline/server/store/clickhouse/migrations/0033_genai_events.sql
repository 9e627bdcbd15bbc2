-- GenAI log events (OTLP logs: the chat messages of an instrumented model call) kept
-- for their span (store/clickhouse/genai_events.py). A row waits for its span
-- (attached 0): the span takes its message when it is stored; the retention task
-- deletes waiting rows once they have waited genai_event_wait_seconds. One that came
-- after its span was stored is kept beside it (attached 1, written again so when it
-- waited), read with its trace, deleted with it, and expired by retention's TTL with
-- it (end_ns: the event's time, within the call's span).
CREATE TABLE IF NOT EXISTS genai_events (
    project_id  UInt64,
    trace_id    String,
    span_id     String,
    event_id    UInt64,
    end_ns      Int64,
    received_ns Int64,
    seq         UInt32,
    is_output   UInt8,
    attached    UInt8,
    message     String CODEC(ZSTD(3))
) ENGINE = MergeTree
ORDER BY (project_id, trace_id, span_id)
