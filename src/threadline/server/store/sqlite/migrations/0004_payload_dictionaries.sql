-- The zstd dictionaries stored payloads are packed with (store/sqlite/payloads.py).
-- A packed payload's frame names its dictionary by dict_id; none is ever deleted.
CREATE TABLE payload_dictionaries (
    dict_id     INTEGER PRIMARY KEY,
    data        BLOB NOT NULL,
    created_ns  INTEGER NOT NULL
);
