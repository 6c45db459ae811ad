-- Notebook storage: every user's directories, files and checkpoints.
--
-- Layout follows pgcontents (directories / files / checkpoints, full-path
-- names) so that a pgcontents database can be imported. Paths are API paths:
-- no leading slash, '' is the root, '/' separates components. They use the
-- "C" collation so that a directory's subtree is one index range
-- (path >= 'dir/' AND path < 'dir0', '0' being the character after '/').
--
-- Isolation is enforced here, not in Python: every row carries the
-- PostgreSQL role that owns it, row-level security shows a per-user role only
-- its own rows, and per-user roles (gilhub/contents/roles.py) get privileges
-- only through this database's group role, which is granted nothing outside
-- this schema. The hub's superuser bypasses row-level security.

CREATE SCHEMA contents;

-- One row: the names of this database's roles, fixed when the schema is made.
-- Roles are cluster-wide, so the names carry a digest of the database name
-- and several gilhub databases can share one cluster.
CREATE TABLE contents.settings (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    role_prefix text NOT NULL,
    group_role  text NOT NULL
);

CREATE TABLE contents.directories (
    owner         text NOT NULL DEFAULT current_user,
    path          text COLLATE "C" NOT NULL,
    parent        text COLLATE "C" NOT NULL
                  GENERATED ALWAYS AS (regexp_replace(path, '/?[^/]*$', '')) STORED,
    created       timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, path),
    -- Deferred so that a whole subtree can be renamed or deleted in one statement.
    FOREIGN KEY (owner, parent) REFERENCES contents.directories (owner, path)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX directories_parent ON contents.directories (owner, parent);

CREATE TABLE contents.files (
    id            bigserial PRIMARY KEY,
    owner         text NOT NULL DEFAULT current_user,
    path          text COLLATE "C" NOT NULL,
    parent        text COLLATE "C" NOT NULL
                  GENERATED ALWAYS AS (regexp_replace(path, '/?[^/]*$', '')) STORED,
    content       bytea NOT NULL,
    size          bigint NOT NULL,
    sha256        bytea NOT NULL,
    created       timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, path),
    FOREIGN KEY (owner, parent) REFERENCES contents.directories (owner, path)
        DEFERRABLE INITIALLY DEFERRED,
    CHECK (size = length(content))
);
CREATE INDEX files_parent ON contents.files (owner, parent);
-- Content is read whole; keep it out of line and uncompressed (notebook
-- outputs are mostly base64 images that do not compress), even for small
-- files, so that renaming a directory rewrites only short rows.
ALTER TABLE contents.files ALTER COLUMN content SET STORAGE EXTERNAL;
ALTER TABLE contents.files SET (toast_tuple_target = 128);

-- Checkpoints belong to a file row, so they follow it through a rename and
-- disappear with it.
CREATE TABLE contents.checkpoints (
    id       bigserial PRIMARY KEY,
    owner    text NOT NULL DEFAULT current_user,
    file_id  bigint NOT NULL REFERENCES contents.files (id) ON DELETE CASCADE,
    content  bytea NOT NULL,
    size     bigint NOT NULL,
    sha256   bytea NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_file ON contents.checkpoints (file_id, id);
ALTER TABLE contents.checkpoints ALTER COLUMN content SET STORAGE EXTERNAL;

-- Chunks of an upload in progress (JupyterLab sends files over 1 MiB in
-- 1 MiB chunks). They are joined into the file in the database when the last
-- chunk (-1) arrives; the stored file is untouched until then.
CREATE TABLE contents.upload_chunks (
    owner    text NOT NULL DEFAULT current_user,
    path     text COLLATE "C" NOT NULL,
    chunk    integer NOT NULL CHECK (chunk > 0),
    content  bytea NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, path, chunk)
);
ALTER TABLE contents.upload_chunks ALTER COLUMN content SET STORAGE EXTERNAL;

ALTER TABLE contents.directories ENABLE ROW LEVEL SECURITY;
ALTER TABLE contents.files ENABLE ROW LEVEL SECURITY;
ALTER TABLE contents.checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE contents.upload_chunks ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_rows ON contents.directories
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY own_rows ON contents.files
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY own_rows ON contents.checkpoints
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY own_rows ON contents.upload_chunks
    USING (owner = current_user) WITH CHECK (owner = current_user);

-- (No format() here: the migration runner's driver reserves the percent sign.)
DO $$
DECLARE
    prefix text := 'gh_' || left(md5(current_database()), 8);
    grp    text := quote_ident(prefix || '_users');
    db     text := quote_ident(current_database());
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = prefix || '_users') THEN
        EXECUTE 'CREATE ROLE ' || grp || ' NOLOGIN';
    END IF;
    INSERT INTO contents.settings (role_prefix, group_role) VALUES (prefix, prefix || '_users');

    -- Only this database's users (and superusers) may connect to it.
    EXECUTE 'REVOKE CONNECT, TEMPORARY ON DATABASE ' || db || ' FROM PUBLIC';
    EXECUTE 'GRANT CONNECT ON DATABASE ' || db || ' TO ' || grp;

    EXECUTE 'GRANT USAGE ON SCHEMA contents TO ' || grp;
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON contents.directories, contents.files,'
        ' contents.checkpoints, contents.upload_chunks TO ' || grp;
    EXECUTE 'GRANT USAGE ON SEQUENCE contents.files_id_seq, contents.checkpoints_id_seq TO '
        || grp;
END
$$;
