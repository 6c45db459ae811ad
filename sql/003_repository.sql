-- The shared notebook repository: entries with a linear history of immutable
-- versions, an activity feed, and full-text search.
-- Authors are stored as user names (not user ids) so that history outlives a
-- removed account. Only the hub's role reads or writes these tables.

CREATE SCHEMA repository;

-- array_to_string is only STABLE in general; on text[] it is immutable, which
-- a generated column needs.
CREATE FUNCTION repository.tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE repository.entries (
    id           bigserial PRIMARY KEY,
    path         text NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
    kind         text NOT NULL CHECK (kind IN ('notebook', 'file')),
    author       text NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    -- number of the newest version; versions are numbered 1, 2, 3, ...
    head         integer NOT NULL DEFAULT 0,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now(),
    deleted      timestamptz,
    deleted_by   text,
    -- Maintained at push: everyone who pushed, every message, and the text of
    -- the newest version's markdown and code cells.
    contributors text NOT NULL DEFAULT '',
    messages     text NOT NULL DEFAULT '',
    body         text NOT NULL DEFAULT '',
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, translate(path, '/._-', '    ')), 'A')
        || setweight(to_tsvector('english'::regconfig, repository.tags_text(tags)), 'A')
        || setweight(to_tsvector('english'::regconfig, author || ' ' || contributors), 'B')
        || setweight(to_tsvector('english'::regconfig, messages), 'C')
        || setweight(to_tsvector('english'::regconfig, body), 'D')
    ) STORED
);
-- A path names at most one live entry; deleted entries keep their history.
CREATE UNIQUE INDEX entries_live_path ON repository.entries (path) WHERE deleted IS NULL;
CREATE INDEX entries_path_pattern ON repository.entries (path text_pattern_ops);
CREATE INDEX entries_search ON repository.entries USING gin (search);
CREATE INDEX entries_tags ON repository.entries USING gin (tags);

CREATE TABLE repository.versions (
    entry_id bigint NOT NULL REFERENCES repository.entries (id) ON DELETE CASCADE,
    number   integer NOT NULL CHECK (number > 0),
    author   text NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    message  text NOT NULL DEFAULT '',
    content  bytea NOT NULL,
    sha256   text NOT NULL,
    size     bigint NOT NULL,
    label    text,
    -- The primary key is the last guard against two pushes creating the
    -- same version number: the loser's insert fails instead of overwriting.
    PRIMARY KEY (entry_id, number)
);

-- What each user last pushed from each of their files. A copy records the
-- version it was pulled as (its origin, in the notebook's metadata); after the
-- user pushes from it, the next push from the same copy with the same origin
-- starts from the version that push made, without rewriting the user's file
-- (which would upset an open JupyterLab document).
CREATE TABLE repository.push_bases (
    author         text NOT NULL,
    source         text NOT NULL,
    entry_id       bigint NOT NULL REFERENCES repository.entries (id) ON DELETE CASCADE,
    -- the origin version recorded in the copy at that push (0: none)
    origin_version integer NOT NULL,
    pushed_version integer NOT NULL,
    PRIMARY KEY (author, source, entry_id)
);

CREATE TABLE repository.events (
    id       bigserial PRIMARY KEY,
    time     timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    -- push, rename, delete, restore, tag, label
    action   text NOT NULL,
    entry_id bigint REFERENCES repository.entries (id) ON DELETE SET NULL,
    path     text NOT NULL,
    version  integer,
    detail   text NOT NULL DEFAULT ''
);
CREATE INDEX events_time ON repository.events (time DESC);
CREATE INDEX events_entry ON repository.events (entry_id, time DESC);
