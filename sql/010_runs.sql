-- Parameterised runs of notebooks as jobs (issue 12).
--
-- The hub (superuser) creates runs and launches their workers; a worker runs as
-- its user's own database role and writes its progress, messages and result
-- here itself, so progress reaches the database even while the hub is down.
-- Row-level security, as in the contents schema, lets a role see and change
-- only its own runs, and only the columns a worker reports.

CREATE SCHEMA runs;

CREATE TABLE runs.runs (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    owner           text NOT NULL,  -- the user's database role (row-level security)
    notebook        text NOT NULL,
    source          text NOT NULL CHECK (source IN ('storage', 'repository')),
    version         integer,
    content         bytea NOT NULL,  -- the notebook as it was when the run was asked for
    parameters      jsonb NOT NULL DEFAULT '{}',
    kernel          text NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    cells_done      integer NOT NULL DEFAULT 0,
    cells_total     integer NOT NULL DEFAULT 0,
    current_cell    integer,
    created         timestamptz NOT NULL DEFAULT now(),
    started         timestamptz,
    ended           timestamptz,
    error_cell      integer,
    error_ename     text,
    error_evalue    text,
    error_traceback text,
    output_path     text,
    worker_pid      integer,
    worker_started  double precision,  -- the worker's process start time (pid reuse guard)
    token_id        bigint
);
CREATE INDEX runs_user ON runs.runs (user_id, id DESC);
CREATE INDEX runs_active ON runs.runs (status) WHERE status IN ('queued', 'running');

CREATE TABLE runs.messages (
    id      bigserial PRIMARY KEY,
    run_id  bigint NOT NULL REFERENCES runs.runs (id) ON DELETE CASCADE,
    owner   text NOT NULL DEFAULT current_user,
    time    timestamptz NOT NULL DEFAULT now(),
    level   text NOT NULL CHECK (level IN ('INFO', 'WARNING', 'ERROR')),
    text    text NOT NULL,
    file    text
);
CREATE INDEX messages_run ON runs.messages (run_id, id);

ALTER TABLE runs.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE runs.messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON runs.runs
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY own_rows ON runs.messages
    USING (owner = current_user) WITH CHECK (owner = current_user);

-- What a run's worker may do, granted to its user's role alone (like contents.grant_storage).
CREATE FUNCTION runs.grant_runs(role_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r text := quote_ident(role_name);
BEGIN
    EXECUTE 'GRANT USAGE ON SCHEMA runs TO ' || r;
    EXECUTE 'GRANT SELECT ON runs.runs, runs.messages TO ' || r;
    EXECUTE 'GRANT UPDATE (status, cells_done, cells_total, current_cell, ended, error_cell,'
        ' error_ename, error_evalue, error_traceback, output_path) ON runs.runs TO ' || r;
    EXECUTE 'GRANT INSERT (run_id, owner, level, text, file) ON runs.messages TO ' || r;
    EXECUTE 'GRANT USAGE ON SEQUENCE runs.messages_id_seq TO ' || r;
END
$$;
REVOKE ALL ON FUNCTION runs.grant_runs(text) FROM PUBLIC;
