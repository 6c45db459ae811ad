"""Isolation between users, enforced by PostgreSQL itself.

Alice's kernel could connect with the credentials her server uses and run any
SQL it likes. These tests do exactly that, with plain psycopg and two real
roles, and check that row-level security and the grants leave Bob's rows
invisible and untouchable and the hub's tables closed.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg
import pytest
from nbformat.sign import NotebookNotary
from psycopg import errors, sql
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.contents import PostgresContentsManager, query
from gilhub.contents.roles import (
    drop_user_role,
    ensure_user_role,
    issue_role_password,
    user_database_url,
)
from gilhub.db import apply_migrations, create_engine
from gilhub.db.migrate import discover
from tests.conftest import new_database


@dataclass
class Person:
    role: str
    url: URL

    def conninfo(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self.conninfo(), autocommit=True)


async def _person(engine: AsyncEngine, database_url: URL, name: str) -> Person:
    role = await ensure_user_role(engine, name)
    password = await issue_role_password(engine, role)
    return Person(role, user_database_url(database_url, role, password))


@pytest.fixture(scope="module")
async def people(engine: AsyncEngine, database_url: URL) -> dict[str, Person]:
    alice = await _person(engine, database_url, "alice")
    bob = await _person(engine, database_url, "bob")
    async with engine.begin() as conn:
        await query.write_file(conn, alice.role, "notes/alice.txt", b"alice's notes")
        await query.write_file(conn, bob.role, "secret/bob.ipynb", b"bob's notebook")
        await query.create_checkpoint(conn, bob.role, "secret/bob.ipynb", keep=5)
    return {"alice": alice, "bob": bob}


@pytest.fixture
async def alice_sql(people: dict[str, Person]) -> AsyncIterator[psycopg.AsyncConnection]:
    conn = await people["alice"].connect()
    try:
        yield conn
    finally:
        await conn.close()


async def _bob_file(engine: AsyncEngine, bob: Person) -> bytes:
    async with engine.connect() as conn:
        record = await query.read_file(conn, bob.role, "secret/bob.ipynb")
    assert record is not None
    return record.content


async def test_roles_are_distinct_logins_without_privileges(engine, people):
    alice, bob = people["alice"], people["bob"]
    assert alice.role != bob.role
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin"
                    " FROM pg_roles WHERE rolname = :r"
                ),
                {"r": alice.role},
            )
        ).one()
    assert tuple(row) == (False, False, False, False, True)


@pytest.mark.parametrize("table", ["files", "directories", "checkpoints", "upload_chunks"])
async def test_alice_sees_only_her_rows(alice_sql, people, table):
    name = sql.Identifier("contents", table)
    rows = await (await alice_sql.execute(sql.SQL("SELECT owner FROM {}").format(name))).fetchall()
    assert {owner for (owner,) in rows} <= {people["alice"].role}
    filtered = await alice_sql.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE owner = %s").format(name), (people["bob"].role,)
    )
    assert (await filtered.fetchone())[0] == 0


async def test_alice_lists_her_own_files(alice_sql):
    rows = await (await alice_sql.execute("SELECT path, content FROM contents.files")).fetchall()
    assert rows == [("notes/alice.txt", b"alice's notes")]


async def test_alice_cannot_change_or_delete_bobs_rows(alice_sql, engine, people):
    bob = people["bob"]
    updated = await alice_sql.execute(
        "UPDATE contents.files SET content = 'pwned', size = 5 WHERE owner = %s", (bob.role,)
    )
    assert updated.rowcount == 0
    deleted = await alice_sql.execute("DELETE FROM contents.files WHERE owner = %s", (bob.role,))
    assert deleted.rowcount == 0
    deleted = await alice_sql.execute("DELETE FROM contents.checkpoints")
    assert deleted.rowcount == 0
    assert await _bob_file(engine, bob) == b"bob's notebook"


async def test_alice_cannot_insert_rows_as_bob(alice_sql, people):
    bob = people["bob"]
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        await alice_sql.execute(
            "INSERT INTO contents.directories (owner, path) VALUES (%s, 'planted')", (bob.role,)
        )


async def test_alice_cannot_give_her_rows_to_bob(alice_sql, people):
    # refused twice over: owner is not a column she may update, and row-level security
    with pytest.raises(errors.InsufficientPrivilege):
        await alice_sql.execute("UPDATE contents.files SET owner = %s", (people["bob"].role,))


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM users",
        "SELECT * FROM api_tokens",
        "SELECT * FROM servers",
        "SELECT * FROM hub_secrets",
        "SELECT * FROM gilhub_migrations",
        "SELECT * FROM contents.settings",
        "ALTER TABLE contents.files DISABLE ROW LEVEL SECURITY",
        "DROP POLICY own_rows ON contents.files",
        "CREATE TABLE contents.mine (x int)",
        "CREATE TABLE public.mine (x int)",
    ],
)
async def test_alice_cannot_touch_hub_tables_or_the_schema(alice_sql, statement):
    with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedTable)):
        await alice_sql.execute(statement)


async def test_alice_cannot_become_bob(alice_sql, people):
    with pytest.raises(errors.InsufficientPrivilege):
        await alice_sql.execute(f'SET ROLE "{people["bob"].role}"')


async def test_alice_cannot_log_in_as_bob_with_her_password(people):
    forged = people["bob"].url.set(password=people["alice"].url.password)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await psycopg.AsyncConnection.connect(
            forged.set(drivername="postgresql").render_as_string(hide_password=False)
        )


async def test_a_new_password_replaces_the_old_one(engine, database_url):
    carol = await _person(engine, database_url, "carol")
    await issue_role_password(engine, carol.role)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await carol.connect()


async def test_hostile_user_names_become_safe_distinct_roles(engine):
    hostile = 'Robert"; DROP TABLE users; --'
    role = await ensure_user_role(engine, hostile)
    assert role.isascii() and role.replace("_", "").isalnum()
    assert role != await ensure_user_role(engine, "robert")
    assert await ensure_user_role(engine, hostile) == role
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() >= 0


async def test_dropping_a_user_removes_role_and_rows(engine, database_url):
    dave = await _person(engine, database_url, "dave")
    async with engine.begin() as conn:
        await query.write_file(conn, dave.role, "a/b/c.txt", b"dave")
    await drop_user_role(engine, "dave")
    async with engine.connect() as conn:
        assert await query.read_file(conn, dave.role, "a/b/c.txt") is None
        remaining = await conn.execute(
            text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": dave.role}
        )
        assert remaining.scalar_one() == 0
    with pytest.raises(psycopg.OperationalError):
        await dave.connect()


async def test_two_servers_share_names_but_not_files(people):
    """Through the manager as well: the same path holds each user's own file."""
    managers = {
        name: PostgresContentsManager(
            db_url=person.url.render_as_string(hide_password=False),
            notary=NotebookNotary(db_file=":memory:", secret=b"test secret"),
        )
        for name, person in people.items()
    }
    try:
        for name, manager in managers.items():
            await manager.save({"type": "file", "format": "text", "content": name}, "same.txt")
        roots = {}
        for name, manager in managers.items():
            assert (await manager.get("same.txt"))["content"] == name
            roots[name] = {entry["name"] for entry in (await manager.get(""))["content"]}
        assert roots == {"alice": {"notes", "same.txt"}, "bob": {"secret", "same.txt"}}
    finally:
        for manager in managers.values():
            await manager.close()


# -- the security review's finding 7: references, shared roles, other databases ----------


async def _bob_file_id(engine: AsyncEngine, bob: Person) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT id FROM contents.files WHERE owner = :o AND path = 'secret/bob.ipynb'"),
            {"o": bob.role},
        )
        return found.scalar_one()


async def _checkpoint_error(alice_sql: psycopg.AsyncConnection, file_id: int) -> str:
    """What PostgreSQL answers Alice for a checkpoint of ``file_id``, the id blanked."""
    with pytest.raises(errors.ForeignKeyViolation) as raised:
        await alice_sql.execute(
            "INSERT INTO contents.checkpoints (file_id, content, size, sha256)"
            " VALUES (%s, 'x', 1, 'x')",
            (file_id,),
        )
    error = raised.value
    return f"{error}|{error.diag.message_detail}".replace(str(file_id), "ID")


async def test_a_checkpoint_on_bobs_file_fails_exactly_like_one_on_no_file(
    alice_sql, engine, people
):
    bobs = await _bob_file_id(engine, people["bob"])
    missing = bobs + 1_000_000
    assert await _checkpoint_error(alice_sql, bobs) == await _checkpoint_error(alice_sql, missing)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO contents.files (id, path, content, size, sha256)"
        " VALUES (%s, 'probe', '', 0, '')",
        "UPDATE contents.files SET id = %s",
        "UPDATE contents.checkpoints SET file_id = %s",
        "INSERT INTO contents.checkpoints (id, file_id, content, size, sha256)"
        " SELECT %s, id, '', 0, '' FROM contents.files",
    ],
)
async def test_alice_cannot_probe_ids_by_writing_them(alice_sql, engine, people, statement):
    """Ids are the database's to choose, so no unique index tells her which exist."""
    bobs = await _bob_file_id(engine, people["bob"])
    with pytest.raises(errors.InsufficientPrivilege):
        await alice_sql.execute(statement, (bobs,))


async def test_alice_can_become_no_other_role(alice_sql, engine):
    shared = await alice_sql.execute(
        "SELECT rolname FROM pg_roles"
        " WHERE pg_has_role(current_user, oid, 'MEMBER') AND rolname <> current_user"
    )
    assert await shared.fetchall() == []
    async with engine.connect() as conn:
        prefix = (await conn.execute(text("SELECT role_prefix FROM contents.settings"))).scalar()
    with pytest.raises((errors.InsufficientPrivilege, errors.InvalidParameterValue)):
        await alice_sql.execute(f'SET ROLE "{prefix}_users"')  # the former shared group


@pytest.mark.parametrize("database", ["postgres", "template1", "gilhub"])
async def test_alice_cannot_connect_to_other_databases(people, database):
    elsewhere = people["alice"].url.set(drivername="postgresql", database=database)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        await psycopg.AsyncConnection.connect(elsewhere.render_as_string(hide_password=False))


async def test_a_database_made_before_migration_6_keeps_working(postgres, tmp_path):
    """Roles made the old way (members of the shared group) get their own grants, the
    group goes, and checkpoints planted on other users' files are dropped."""
    old = tmp_path / "sql"
    old.mkdir()
    for migration in discover():
        if migration.version < 6:
            shutil.copy(migration.path, old / migration.path.name)
    with new_database(postgres) as url:
        engine = create_engine(url)
        try:
            await apply_migrations(engine, old)
            async with engine.begin() as conn:
                prefix, group = (
                    await conn.execute(
                        text("SELECT role_prefix, group_role FROM contents.settings")
                    )
                ).one()
            roles = {name: f"{prefix}_u_{name}" for name in ("alice", "bob")}
            async with engine.begin() as conn:
                for role in roles.values():
                    await conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
                    await conn.exec_driver_sql(f'GRANT "{group}" TO "{role}"')
                    await query.make_directories(conn, role, "")
                await query.write_file(conn, roles["bob"], "b.txt", b"bob")
                await query.create_checkpoint(conn, roles["bob"], "b.txt", keep=5)
                await conn.execute(
                    text(
                        "INSERT INTO contents.checkpoints (owner, file_id, content, size, sha256)"
                        " SELECT :alice, id, 'x', 1, 'x' FROM contents.files"
                    ),
                    {"alice": roles["alice"]},
                )
            assert await apply_migrations(engine) == [
                m.version for m in discover() if m.version >= 6
            ]
            async with engine.connect() as conn:
                owners = await conn.execute(text("SELECT owner FROM contents.checkpoints"))
                assert owners.scalars().all() == [roles["bob"]]
                gone = await conn.execute(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :g"), {"g": group}
                )
                assert gone.first() is None
            password = await issue_role_password(engine, roles["alice"])
            alice = Person(roles["alice"], user_database_url(url, roles["alice"], password))
            conn = await alice.connect()
            try:
                await conn.execute(
                    "INSERT INTO contents.files (path, content, size, sha256)"
                    " VALUES ('mine.txt', 'a', 1, 'a')"
                )
                listed = await conn.execute("SELECT path FROM contents.files")
                assert await listed.fetchall() == [("mine.txt",)]
            finally:
                await conn.close()
        finally:
            await engine.dispose()
