-- The traces that may meet a list filter (user, tag, metadata value), found by the
-- filter's value instead of merging every trace of a window (store/clickhouse/trace_labels.py;
-- docs/architecture.md, "Dashboard metrics").
--
-- A trace's user, tags and metadata are known only once all its exports have merged (the
-- root's user, else the earliest span naming one; every span's tags; each metadata key's
-- last value), but each is the value of one of its spans: so every trace whose merged row
-- meets a filter has a span naming that value, and the traces with such a span are a
-- superset of the ones that meet it, which a read narrows to first and then checks on
-- the merged rows. One row per (label, trace) that any span ever named, whatever the
-- export: `kind` 1 a user (`value`), 2 a tag (`value`), 3 a metadata key's filter text
-- (`key`, `value`). Duplicates (retries, one trace over several exports) collapse on
-- merge and change no read (reads take the distinct trace ids). Partitioned by month, so
-- that retention drops whole parts, like session_members.
CREATE TABLE IF NOT EXISTS trace_labels (
    project_id  UInt64,
    kind        UInt8,
    key         String,
    value       String,
    trace_id    String,
    end_ns      Int64
) ENGINE = ReplacingMergeTree(end_ns)
PARTITION BY toYYYYMM(toDateTime(intDiv(end_ns, 1000000000)))
ORDER BY (project_id, kind, key, value, trace_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_labels_from_intake TO trace_labels AS
    SELECT project_id, label.1 AS kind, label.2 AS key, label.3 AS value, trace_id,
        max(end_ns) AS end_ns
    FROM span_intake
    ARRAY JOIN arrayConcat(
        arrayFilter(l -> l.3 != '', [(toUInt8(1), '', coalesce(user_id, ''))]),
        arrayMap(t -> (toUInt8(2), '', t), tag_list),
        arrayMap(e -> (toUInt8(3), e.1, assumeNotNull(e.3)),
            arrayFilter(e -> isNotNull(e.3), meta_entries))) AS label
    GROUP BY project_id, kind, key, value, trace_id;

-- Traces stored before this migration, from their parts: the users their roots and
-- first spans named, every span's tags and metadata entries (running it twice, or
-- beside live inserts, changes no read).
INSERT INTO trace_labels
    SELECT project_id, label.1 AS kind, label.2 AS key, label.3 AS value, trace_id,
        max(end_ns) AS end_ns
    FROM trace_parts_by_id
    ARRAY JOIN arrayConcat(
        arrayFilter(l -> l.3 != '', [(toUInt8(1), '', coalesce(tupleElement(root, 6), '')),
            (toUInt8(1), '', tupleElement(first_user, 4))]),
        arrayMap(t -> (toUInt8(2), '', t.4), tag_entries),
        arrayMap(e -> (toUInt8(3), e.3, assumeNotNull(e.5)),
            arrayFilter(e -> isNotNull(e.5), meta_entries))) AS label
    GROUP BY project_id, kind, key, value, trace_id;
