-- One integer key per trace, minted when the trace is first seen (store/sqlite/trace_keys.py),
-- so that the per-trace B-trees a new trace adds to are appended at their right edge
-- instead of taking an insert at a random page picked by its random trace id. Past the
-- writer's page cache each such insert cost a leaf read and a dirty leaf written twice
-- (WAL, checkpoint): spans_identity alone passed a 16 MiB cache at ~230k spans
-- (docs/benchmarks.md, the growth run). The lookup from (project, trace id) to the key
-- is the one index left that takes a trace at a random place besides the traces'
-- primary key; it holds two short values a trace (~24 MB at 5M spans).
--
-- search_traces (0009) already minted such a key for the traces with searchable text,
-- and the search index's document rowids are made from it: it becomes the key of every
-- trace, keeping its keys (and its count of numbered documents).
CREATE TABLE trace_keys (
    key         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    numbered    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO trace_keys (key, project_id, trace_id, numbered)
    SELECT key, project_id, trace_id, numbered FROM search_traces ORDER BY key;
-- The other traces in the order they started (relevance's "newest first" reads keys
-- as arrival order; these have no searchable text, so they never rank).
INSERT INTO trace_keys (project_id, trace_id)
    SELECT t.project_id, t.trace_id FROM traces AS t
    WHERE NOT EXISTS (SELECT 1 FROM search_traces AS s
        WHERE s.project_id = t.project_id AND s.trace_id = t.trace_id)
    ORDER BY t.start_ns, t.trace_id;
-- Spans without a rollup should not exist (both are written in one transaction); a key
-- for any all the same, so that no span is left without one.
INSERT INTO trace_keys (project_id, trace_id)
    SELECT DISTINCT s.project_id, s.trace_id FROM spans AS s
    WHERE NOT EXISTS (SELECT 1 FROM traces AS t
            WHERE t.project_id = s.project_id AND t.trace_id = s.trace_id)
        AND NOT EXISTS (SELECT 1 FROM search_traces AS k
            WHERE k.project_id = s.project_id AND k.trace_id = s.trace_id);
DROP TABLE search_traces;
CREATE UNIQUE INDEX trace_keys_identity ON trace_keys (project_id, trace_id);

-- A span's uniqueness is (trace key, span id): a new trace's spans land at the end.
-- The one-off cost: every span row is written again, once (docs/deploy.md).
ALTER TABLE spans ADD COLUMN trace_key INTEGER;
UPDATE spans SET trace_key = (SELECT k.key FROM trace_keys AS k
    WHERE k.project_id = spans.project_id AND k.trace_id = spans.trace_id);
DROP INDEX spans_identity;
CREATE UNIQUE INDEX spans_identity ON spans (trace_key, span_id);

-- The live feed's one row per trace, found by the trace's key.
ALTER TABLE trace_feed ADD COLUMN trace_key INTEGER;
UPDATE trace_feed SET trace_key = (SELECT k.key FROM trace_keys AS k
    WHERE k.project_id = trace_feed.project_id AND k.trace_id = trace_feed.trace_id);
DELETE FROM trace_feed WHERE trace_key IS NULL;
DROP INDEX trace_feed_identity;
CREATE UNIQUE INDEX trace_feed_identity ON trace_feed (trace_key);
-- As 0002's: ingest's INSERT OR REPLACE of a rollup re-numbers the trace in the feed.
DROP TRIGGER trace_feed_on_write;
CREATE TRIGGER trace_feed_on_write AFTER INSERT ON traces
BEGIN
    INSERT OR REPLACE INTO trace_feed (project_id, trace_id, trace_key)
        VALUES (NEW.project_id, NEW.trace_id, (SELECT key FROM trace_keys
            WHERE project_id = NEW.project_id AND trace_id = NEW.trace_id));
END;
