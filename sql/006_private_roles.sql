-- Users' database roles share nothing (security review, finding 7).
--
-- 1. A checkpoint references its file by (owner, file_id). Row-level security
--    forces a user's rows to carry their own role as owner, so a checkpoint
--    pointing at another user's file fails with the same foreign-key error as
--    one pointing at no file: the error no longer tells which ids exist.
--    Ids are the database's to choose: users may not write the id columns,
--    whose unique index would otherwise answer the same question.
-- 2. No shared group role: it let every user SET ROLE to it and own rows that
--    every other user could change too. Each user's role is granted exactly
--    what it needs, by contents.grant_storage(role), and nothing else.
--
-- (No format() here: the migration runner's driver reserves the percent sign.)

-- Checkpoints planted on other users' files by the old schema's hole.
DELETE FROM contents.checkpoints AS c
    USING contents.files AS f
    WHERE f.id = c.file_id AND f.owner <> c.owner;

ALTER TABLE contents.files ADD CONSTRAINT files_owner_id_key UNIQUE (owner, id);
ALTER TABLE contents.checkpoints DROP CONSTRAINT checkpoints_file_id_fkey;
ALTER TABLE contents.checkpoints ADD CONSTRAINT checkpoints_owner_file_fkey
    FOREIGN KEY (owner, file_id) REFERENCES contents.files (owner, id)
    ON UPDATE CASCADE ON DELETE CASCADE;

-- Everything a user's server may do in this database, granted to its role alone.
CREATE FUNCTION contents.grant_storage(role_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r text := quote_ident(role_name);
BEGIN
    EXECUTE 'GRANT CONNECT ON DATABASE ' || quote_ident(current_database()) || ' TO ' || r;
    EXECUTE 'GRANT USAGE ON SCHEMA contents TO ' || r;
    EXECUTE 'GRANT SELECT, DELETE ON contents.directories, contents.files,'
        ' contents.checkpoints, contents.upload_chunks TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, created, last_modified),'
        ' UPDATE (path, created, last_modified) ON contents.directories TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, content, size, sha256, created, last_modified),'
        ' UPDATE (path, content, size, sha256, created, last_modified)'
        ' ON contents.files TO ' || r;
    EXECUTE 'GRANT INSERT (owner, file_id, content, size, sha256, created)'
        ' ON contents.checkpoints TO ' || r;
    EXECUTE 'GRANT INSERT (owner, path, chunk, content, received)'
        ' ON contents.upload_chunks TO ' || r;
    EXECUTE 'GRANT USAGE ON SEQUENCE contents.files_id_seq, contents.checkpoints_id_seq TO '
        || r;
END
$$;
REVOKE ALL ON FUNCTION contents.grant_storage(text) FROM PUBLIC;

-- Existing users' roles: their own grants instead of the group's, then no group.
DO $$
DECLARE
    grp    text := (SELECT group_role FROM contents.settings);
    member text;
BEGIN
    FOR member IN
        SELECT m.rolname FROM pg_auth_members AS a
        JOIN pg_roles AS g ON g.oid = a.roleid
        JOIN pg_roles AS m ON m.oid = a.member
        WHERE g.rolname = grp
    LOOP
        PERFORM contents.grant_storage(member);
        EXECUTE 'REVOKE ' || quote_ident(grp) || ' FROM ' || quote_ident(member);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grp) THEN
        EXECUTE 'REVOKE ALL ON contents.directories, contents.files, contents.checkpoints,'
            ' contents.upload_chunks FROM ' || quote_ident(grp);
        EXECUTE 'REVOKE ALL ON SEQUENCE contents.files_id_seq, contents.checkpoints_id_seq FROM '
            || quote_ident(grp);
        EXECUTE 'REVOKE ALL ON SCHEMA contents FROM ' || quote_ident(grp);
        EXECUTE 'REVOKE ALL ON DATABASE ' || quote_ident(current_database()) || ' FROM '
            || quote_ident(grp);
        EXECUTE 'DROP ROLE ' || quote_ident(grp);
    END IF;
END
$$;
ALTER TABLE contents.settings DROP COLUMN group_role;
