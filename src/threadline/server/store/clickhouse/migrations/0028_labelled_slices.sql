-- The dashboard grouped by a tag or a metadata key, or narrowed by tags and metadata,
-- reads each slice's traces and sessions with their labels (store/clickhouse/
-- metric_labels_read.py) instead of merging the range's trace parts again: the refresh
-- pass (metric_slices.py) computes them with the slice's other figures, from the same
-- merged rollups, so a slice's labelled rows are replaced whole with it.
--
-- (trace id, user, last hour, failed, cost, input, output, total tokens, tags,
-- metadata as filter text, usage by model: (model, 1 when a span's cost was known,
-- cost in picodollars, input, output, total tokens)) of each of the slice's traces.
ALTER TABLE metric_slices ADD COLUMN IF NOT EXISTS labelled_traces Array(Tuple(
    String, Nullable(String), Int64, UInt8, Nullable(Float64), Int64, Int64, Int64,
    Array(String), Map(String, String),
    Array(Tuple(String, UInt64, Int64, Int64, Int64, Int64))));

-- (session id, each of its traces' (tags, metadata as filter text), whenever they ran)
-- of each of the slice's sessions, in the order of `sessions`.
ALTER TABLE metric_slices ADD COLUMN IF NOT EXISTS session_labels Array(Tuple(
    String, Array(Tuple(Array(String), Map(String, String)))));

-- The slices written before hold none of these: the next pass is a store's first
-- (every slice computed again), and until it has completed, a dashboard rolls up its
-- range from the trace parts, as a store new to the slices does.
TRUNCATE TABLE metric_passes
