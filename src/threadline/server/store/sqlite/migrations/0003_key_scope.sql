-- What a key may do: 'full' (write spans and read everything of its project) or
-- 'ingest' (write spans only: the key an application ships with).
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';
