-- requires SQLite 3.43
-- The search index (0009) made again with FTS5's contentless_delete (SQLite 3.43+), so
-- that deleting a trace, and retention, take its documents out by rowid alone instead
-- of reading its spans back to give FTS5 the text each document indexed.
--
-- A contentless index cannot be converted, nor rebuilt by FTS5 (it holds no text): it
-- is dropped, and the spans are indexed anew when the store next opens
-- (search.backfill, in transactions of 5,000 spans, resumable), before the server
-- serves. The traces keep their keys (so relevance's "newest first" keeps arrival
-- order); their documents are numbered again from 0. An engine older than 3.43 leaves
-- this migration pending (store/sqlite/driver.py) and keeps the old index.
DROP TABLE search_text;
CREATE VIRTUAL TABLE search_text USING fts5(
    body, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- A segment is written anew without its deleted documents once three quarters of them
-- are (FTS5's default, a tenth, rewrote each segment several times over as retention
-- deletes the oldest traces in order: 30 µs a span deleted against 5; both give the
-- space back; benchmarks.md).
INSERT INTO search_text (search_text, rank) VALUES ('deletemerge', 75);
DELETE FROM search_docs;
-- The traces' documents are numbered again from 0 by search.backfill, which finds no
-- document: the count is kept in search_traces before 0018 and in trace_keys after,
-- and an engine older than 3.43 applies 0018 before this one.
DELETE FROM search_backfill;
INSERT INTO search_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM spans);
