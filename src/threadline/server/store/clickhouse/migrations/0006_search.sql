-- Full-text search over every span (store/clickhouse/search.py). One row per span with
-- searchable text: its words (search/text.py) folded (lower case, no accents, each CJK
-- character a word) and joined by single spaces between two spaces, so that a word, a
-- phrase and a prefix are each one substring (' word ', ' a phrase ', ' pref'). The
-- token bloom filter skips the granules that lack a word; the n-gram one those that
-- lack a prefix's or phrase's trigrams. end_ns is for retention's TTL, as on spans.
CREATE TABLE IF NOT EXISTS search_text (
    project_id  UInt64,
    trace_id    String,
    span_id     String,
    end_ns      Int64,
    words       String CODEC(ZSTD(3)),
    INDEX words_tokens words TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 1,
    INDEX words_ngrams words TYPE ngrambf_v1(3, 8192, 3, 0) GRANULARITY 1
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, trace_id, span_id)
