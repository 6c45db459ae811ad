-- Run definitions: a notebook, parameters and kernel kept under a name, run on
-- demand or on a cron schedule (issue 12).
--
-- A schema of their own rather than tables in ``runs``: this migration's number
-- comes before 010_runs.sql, so on a new database the runs schema does not exist
-- yet when this one is applied (and on an existing one it does); neither may
-- depend on the other. The link from a definition to its runs is therefore a
-- table here, without a foreign key to runs.runs.
--
-- Only the hub reads and writes these tables (a user's role is granted nothing).

CREATE SCHEMA schedules;

CREATE TABLE schedules.definitions (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    notebook    text NOT NULL,
    source      text NOT NULL CHECK (source IN ('storage', 'repository')),
    version     integer,
    parameters  jsonb NOT NULL DEFAULT '{}',
    kernel      text NOT NULL,
    schedule    text,               -- a cron expression; NULL: on demand only
    timezone    text NOT NULL DEFAULT 'UTC',  -- an IANA name the schedule is read in
    paused      boolean NOT NULL DEFAULT false,
    keep_runs   integer NOT NULL DEFAULT 10 CHECK (keep_runs > 0),
    next_run    timestamptz,        -- when the schedule is due next (NULL: not scheduled)
    last_error  text,               -- why the last scheduled run could not be queued
    created     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);
CREATE INDEX definitions_due ON schedules.definitions (next_run)
    WHERE schedule IS NOT NULL AND NOT paused;

CREATE TABLE schedules.definition_runs (
    run_id          bigint PRIMARY KEY,
    definition_id   bigint NOT NULL REFERENCES schedules.definitions (id) ON DELETE CASCADE
);
CREATE INDEX definition_runs_definition ON schedules.definition_runs (definition_id, run_id DESC);
