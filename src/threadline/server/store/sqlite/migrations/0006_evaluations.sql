-- Evaluators (an LLM judge's definition, per project and name), their runs, and what
-- each evaluator name has done and cost.

-- definition: the evaluator as its client sent it (JSON); online is kept apart so the
-- sweep for ended sessions finds the online ones without parsing every definition.
-- swept_until_ns: sessions that ended up to this time have been looked at (NULL: not
-- yet; the first sweep starts from its own time, not from the project's history).
CREATE TABLE evaluators (
    project_id      INTEGER NOT NULL,
    name            TEXT NOT NULL,
    definition      TEXT NOT NULL,
    online          INTEGER NOT NULL,
    created_ns      INTEGER NOT NULL,
    swept_until_ns  INTEGER,
    PRIMARY KEY (project_id, name)
);
CREATE INDEX evaluators_online ON evaluators (online) WHERE online = 1;

-- One row per judgment wanted, kept after it is done or failed. An online run's id is
-- derived from (project, evaluator, target, the target's end time), so that two sweeps
-- (two worker processes) ask for it once, and a session that resumes and ends again
-- gets a new one.
CREATE TABLE evaluation_runs (
    project_id        INTEGER NOT NULL,
    id                TEXT NOT NULL,
    evaluator         TEXT NOT NULL,
    target_kind       TEXT NOT NULL,
    target_id         TEXT NOT NULL,
    session_id        TEXT,
    trigger           TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT,
    attempts          INTEGER NOT NULL,
    score_id          TEXT,
    input_tokens      INTEGER,
    output_tokens     INTEGER,
    cost_usd          REAL,
    created_ns        INTEGER NOT NULL,
    finished_ns       INTEGER,
    claimed_until_ns  INTEGER,
    PRIMARY KEY (project_id, id)
);
-- The runner's queue: only unfinished runs are in this index.
CREATE INDEX evaluation_runs_waiting ON evaluation_runs (status, created_ns)
    WHERE status IN ('pending', 'running');
CREATE INDEX evaluation_runs_by_time ON evaluation_runs (project_id, created_ns, id);
CREATE INDEX evaluation_runs_by_session ON evaluation_runs (project_id, session_id, created_ns, id);
CREATE INDEX evaluation_runs_by_evaluator ON evaluation_runs (project_id, evaluator, created_ns, id);

-- Per evaluator name: finished runs and the judge's tokens and cost, added to as each
-- run finishes (in the same transaction), so totals are never summed over runs.
CREATE TABLE evaluation_totals (
    project_id     INTEGER NOT NULL,
    evaluator      TEXT NOT NULL,
    runs_done      INTEGER NOT NULL,
    runs_failed    INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cost_usd       REAL,
    PRIMARY KEY (project_id, evaluator)
);
