-- A project's own data rules: how many days its traces are kept (NULL: the server's
-- --retention-days; 0: forever) and its redaction rules (JSON of
-- server/redaction/rules.py; '' for none).
ALTER TABLE projects ADD COLUMN retention_days INTEGER;
ALTER TABLE projects ADD COLUMN redaction TEXT NOT NULL DEFAULT '';
