-- requires SQLite 3.43
-- The search index (0016) made again without positions (FTS5's detail = none).
DROP TABLE search_text;
CREATE VIRTUAL TABLE search_text USING fts5(
    body, content = '', contentless_delete = 1, detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_text (search_text, rank) VALUES ('deletemerge', 75);
DELETE FROM search_docs;
DELETE FROM search_backfill;
INSERT INTO search_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM spans);
