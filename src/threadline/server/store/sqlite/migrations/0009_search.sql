-- Full-text search over every span (store/sqlite/search.py).
--
-- search_text is a contentless FTS5 index: it holds the words and where they are, never
-- the text, which stays in spans, packed. A document is the searchable text
-- (search/text.py) of the spans of one trace that one batch brought, its rowid the
-- trace's key times 2^20 plus its number in the trace, so that "does this trace match"
-- is one range of rowids in the index, and a match names its trace without reading.
CREATE VIRTUAL TABLE search_text USING fts5(
    body, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
-- A key for each trace with indexed spans, and how many spans it numbered.
CREATE TABLE search_traces (
    key         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    numbered    INTEGER NOT NULL
);
CREATE UNIQUE INDEX search_traces_identity ON search_traces (project_id, trace_id);
-- Which spans each document holds, space-separated, in order (snippets, search inside a
-- session, deletion).
CREATE TABLE search_docs (
    doc       INTEGER PRIMARY KEY,
    span_ids  TEXT NOT NULL
);
-- A store that had spans before the index: they are indexed when it next opens
-- (search.backfill, in batches, resumable), then the row goes.
CREATE TABLE search_backfill (pending INTEGER NOT NULL);
INSERT INTO search_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM spans);
