-- The evaluation queue is claimed fairly across projects (evaluation/fair_share.py):
-- a claim finds the projects with pending runs by skipping from one project to the
-- next in evaluation_runs_pending, reads each chosen project's oldest ones from it,
-- and counts each project's runs in flight in evaluation_runs_running (runs in flight
-- are few: at most every runner's concurrency). The index they replace, on (status,
-- created_ns), served one queue oldest first across projects; a partial index on
-- "status IN (...)" is not used by a query on one status, so it is split in two.
DROP INDEX IF EXISTS evaluation_runs_waiting;
CREATE INDEX evaluation_runs_pending ON evaluation_runs (project_id, created_ns)
    WHERE status = 'pending';
CREATE INDEX evaluation_runs_running ON evaluation_runs (project_id, claimed_until_ns)
    WHERE status = 'running';
