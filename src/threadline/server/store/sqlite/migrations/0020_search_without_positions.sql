-- requires SQLite 3.43
-- The search index (0016) made again without positions (FTS5's detail = none): they
-- were most of the index's bytes and of the work its commits and merges do at ingest
-- (benchmarks.md, "The search index without positions"). Phrases are then checked on
-- the candidate traces' text (search_phrases.py), relevance scored on it
-- (search_relevance.py).
--
-- As in 0016, a contentless index cannot be rebuilt by FTS5: it is dropped, and the
-- spans are indexed anew when the store next opens (search.backfill, resumable),
-- before the server serves; the traces keep their keys, their documents are numbered
-- again from 0. Needs contentless_delete, as 0016 does: an engine older than 3.43
-- leaves it pending with 0016.
DROP TABLE search_text;
CREATE VIRTUAL TABLE search_text USING fts5(
    body, content = '', contentless_delete = 1, detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_text (search_text, rank) VALUES ('deletemerge', 75);
DELETE FROM search_docs;
DELETE FROM search_backfill;
INSERT INTO search_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM spans);
