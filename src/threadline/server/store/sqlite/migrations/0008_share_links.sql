-- Read-only links to one session or trace. The token is a 256-bit secret stored as its
-- SHA-256 digest only, like API keys; a link is found by that digest.
CREATE TABLE share_links (
    id             TEXT PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    token_hash     BLOB NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    created_ns     INTEGER NOT NULL,
    expires_ns     INTEGER NOT NULL,
    revoked_ns     INTEGER,
    hide_io        INTEGER NOT NULL,
    hide_metadata  TEXT NOT NULL
);
CREATE INDEX share_links_by_project ON share_links (project_id, created_ns);
