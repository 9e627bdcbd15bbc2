-- The score rollups waiting for their target (not stored yet: a score often arrives
-- before the spans it names), found without reading the others: while a project has
-- none, ingest does not look up each trace and session new to the store among the
-- rollups (store/sqlite/metric_scores.targets_moved).
CREATE INDEX score_rollups_waiting ON score_rollups (project_id) WHERE target_hour IS NULL;
