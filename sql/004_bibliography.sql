-- Bibliography: who added or replaced which entry, and when.
--
-- The BibTeX file stays the source of truth (people edit it by hand and in git);
-- this table only records the changes made through the hub. Like the hub's own
-- tables it is granted to no user server role.

CREATE SCHEMA bibliography;

CREATE TABLE bibliography.changes (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- kept when the user is removed: the name says who it was
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    user_name   text NOT NULL,
    action      text NOT NULL CHECK (action IN ('add', 'replace')),
    -- how the entry arrived: the one-entry form, pasted BibTeX, an uploaded file, the API,
    -- the command line (gilhub bib add)
    source      text NOT NULL CHECK (source IN ('form', 'paste', 'upload', 'api', 'cli')),
    entry_key   text NOT NULL,
    entry_type  text NOT NULL,
    -- the entry's BibTeX as written to the file
    bibtex      text NOT NULL,
    -- the file written to, and the sha256 of its content after the write
    file_name   text NOT NULL,
    file_sha256 text NOT NULL
);
CREATE INDEX bibliography_changes_key ON bibliography.changes (entry_key, at DESC);
CREATE INDEX bibliography_changes_user ON bibliography.changes (user_id, at DESC);

-- Parsed versions of the file (see gilhub/bibliography/cache.py), found by the sha256 of its
-- bytes, so that a restarted hub does not parse an unchanged file again. Derived data only:
-- deleting rows is always safe.
CREATE TABLE bibliography.parsed (
    file_sha256 text NOT NULL,
    -- the parser that produced the payload; another parser's rows are ignored
    parser      text NOT NULL,
    -- compressed JSON: entries, problems, @string macros
    payload     bytea NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_sha256, parser)
);
