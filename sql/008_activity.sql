-- Activity narrative (issue 13): what a user did in their notebooks, recorded by their own
-- server under their own database role.
--
-- As in the contents schema, every row carries the role that owns it, row-level security
-- shows a user's role only its own rows, and composite foreign keys include the owner, so a
-- row can never point at another user's row (the error would be the same as for no row).
-- (The foreign keys are deferred so that a rename can move a user's rows table by table.)
-- Ids are the database's to choose: users' roles may not write id columns. The hub (the
-- superuser) reads, deletes and purges; users' servers insert and read their own.

CREATE SCHEMA activity;

-- One row per version of a cell's source: cell_version is the sha256 (hex) of the whole
-- source; a long source is kept cut (source_truncated), its version still the hash of the whole.
CREATE TABLE activity.cell_versions (
    owner         text NOT NULL DEFAULT current_user,
    path          text COLLATE "C" NOT NULL,
    cell_id       text NOT NULL,
    cell_version  text NOT NULL CHECK (cell_version ~ '^[0-9a-f]{64}$'),
    source        text NOT NULL,
    source_truncated boolean NOT NULL DEFAULT false,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, path, cell_id, cell_version)
);

CREATE TABLE activity.executions (
    id              bigserial PRIMARY KEY,
    owner           text NOT NULL DEFAULT current_user,
    path            text COLLATE "C" NOT NULL,
    cell_id         text NOT NULL,
    cell_version    text NOT NULL,
    execution_count integer,
    started         timestamptz NOT NULL,
    ended           timestamptz NOT NULL,
    received        timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL CHECK (status IN ('ok', 'error')),
    ename           text,
    evalue          text,
    output_hash     text,
    FOREIGN KEY (owner, path, cell_id, cell_version)
        REFERENCES activity.cell_versions (owner, path, cell_id, cell_version)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX executions_cell ON activity.executions (owner, path, cell_id, started);
CREATE INDEX executions_received ON activity.executions (received);

CREATE TABLE activity.notebook_events (
    id       bigserial PRIMARY KEY,
    owner    text NOT NULL DEFAULT current_user,
    path     text COLLATE "C" NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('open', 'save', 'close')),
    time     timestamptz NOT NULL,
    received timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notebook_events_path ON activity.notebook_events (owner, path, time);

-- A question put to the user about one version of a cell: at most one per version.
CREATE TABLE activity.prompts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner        text NOT NULL DEFAULT current_user,
    path         text COLLATE "C" NOT NULL,
    cell_id      text NOT NULL,
    cell_version text NOT NULL,
    reason       text NOT NULL,
    asked        timestamptz NOT NULL DEFAULT now(),
    outcome      text CHECK (outcome IN ('answered', 'skipped', 'dont_ask')),
    closed       timestamptz,
    UNIQUE (owner, id),
    UNIQUE (owner, path, cell_id, cell_version),
    FOREIGN KEY (owner, path, cell_id, cell_version)
        REFERENCES activity.cell_versions (owner, path, cell_id, cell_version)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX prompts_asked ON activity.prompts (owner, asked);

-- The user's answer, with the version of the cell it describes.
CREATE TABLE activity.answers (
    id           bigserial PRIMARY KEY,
    owner        text NOT NULL DEFAULT current_user,
    prompt_id    uuid NOT NULL,
    path         text COLLATE "C" NOT NULL,
    cell_id      text NOT NULL,
    cell_version text NOT NULL,
    answer       text NOT NULL,
    time         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (owner, prompt_id) REFERENCES activity.prompts (owner, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (owner, path, cell_id, cell_version)
        REFERENCES activity.cell_versions (owner, path, cell_id, cell_version)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX answers_cell ON activity.answers (owner, path, cell_id);

-- The user's own switch (no row: recording is on, if the site enables it).
CREATE TABLE activity.settings (
    owner   text PRIMARY KEY DEFAULT current_user,
    enabled boolean NOT NULL DEFAULT true,
    changed timestamptz NOT NULL DEFAULT now()
);

-- Notebooks the user said not to be asked about.
CREATE TABLE activity.quiet_notebooks (
    owner text NOT NULL DEFAULT current_user,
    path  text COLLATE "C" NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, path)
);

-- Notebooks whose story the user shares with the administrators (otherwise they see counts).
CREATE TABLE activity.shared_notebooks (
    owner text NOT NULL DEFAULT current_user,
    path  text COLLATE "C" NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, path)
);

-- Every table: row-level security, each role its own rows.
-- (No format() here: the migration runner's driver reserves the percent sign.)
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cell_versions', 'executions', 'notebook_events', 'prompts',
                             'answers', 'settings', 'quiet_notebooks', 'shared_notebooks']
    LOOP
        EXECUTE 'ALTER TABLE activity.' || t || ' ENABLE ROW LEVEL SECURITY';
        EXECUTE 'CREATE POLICY own_rows ON activity.' || t
            || ' USING (owner = current_user) WITH CHECK (owner = current_user)';
    END LOOP;
END
$$;

-- What a user's server may do here, granted to its role alone (beside contents.grant_storage,
-- at every server start). The switch and sharing are the hub's to change: the server only
-- reads them.
CREATE FUNCTION activity.grant_activity(role_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r text := quote_ident(role_name);
BEGIN
    EXECUTE 'GRANT USAGE ON SCHEMA activity TO ' || r;
    EXECUTE 'GRANT SELECT ON activity.cell_versions, activity.executions,'
        ' activity.notebook_events, activity.prompts, activity.answers, activity.settings,'
        ' activity.quiet_notebooks, activity.shared_notebooks TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, cell_id, cell_version, source, source_truncated)'
        ' ON activity.cell_versions TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, cell_id, cell_version, execution_count, started, ended,'
        ' status, ename, evalue, output_hash) ON activity.executions TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, kind, time) ON activity.notebook_events TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, cell_id, cell_version, reason),'
        ' UPDATE (outcome, closed) ON activity.prompts TO ' || r;
    EXECUTE 'GRANT INSERT (owner, prompt_id, path, cell_id, cell_version, answer)'
        ' ON activity.answers TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path) ON activity.quiet_notebooks TO ' || r;
    EXECUTE 'GRANT USAGE ON SEQUENCE activity.executions_id_seq,'
        ' activity.notebook_events_id_seq, activity.answers_id_seq TO ' || r;
END
$$;
REVOKE ALL ON FUNCTION activity.grant_activity(text) FROM PUBLIC;
