"""Importing pgcontents: a pgcontents-shaped schema made with plain SQL, filled, copied."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import datetime

import nbformat
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.accounts import create_account
from gilhub.contents import query
from gilhub.contents.pgcontents_import import PgcontentsImport, fernet_from_keys
from gilhub.users import get_user_by_name

# pgcontents' layout (quantopian/pgcontents, schema "pgcontents"), reduced to what is imported.
PGCONTENTS_SCHEMA = """
CREATE SCHEMA pgcontents;
CREATE TABLE pgcontents.users (id varchar(30) PRIMARY KEY);
CREATE TABLE pgcontents.directories (
    user_id varchar(30) NOT NULL REFERENCES pgcontents.users (id),
    name varchar(300) NOT NULL,
    parent_user_id varchar(30),
    parent_name varchar(300),
    PRIMARY KEY (user_id, name)
);
CREATE TABLE pgcontents.files (
    id serial PRIMARY KEY,
    name varchar(300) NOT NULL,
    user_id varchar(30) NOT NULL REFERENCES pgcontents.users (id),
    parent_name varchar(300) NOT NULL,
    content bytea NOT NULL,
    created_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE pgcontents.remote_checkpoints (
    id serial PRIMARY KEY,
    user_id varchar(30) NOT NULL REFERENCES pgcontents.users (id),
    path varchar(300) NOT NULL,
    content bytea NOT NULL,
    last_modified timestamp NOT NULL DEFAULT now()
);
"""

KEY = Fernet.generate_key()
NOTEBOOK = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("42")]))
BINARY = bytes(range(256))
OLD_TIME = datetime(2019, 5, 17, 12, 30)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


async def _fill(conn) -> None:
    for user in ("alice", "jdoe", "ghost"):
        await conn.execute(text("INSERT INTO pgcontents.users VALUES (:u)"), {"u": user})

    async def directory(user: str, name: str, parent: str | None) -> None:
        await conn.execute(
            text("INSERT INTO pgcontents.directories VALUES (:u, :n, :pu, :p)"),
            {"u": user, "n": name, "pu": user if parent else None, "p": parent},
        )

    async def file(user: str, parent: str, name: str, content: bytes, when=None) -> None:
        await conn.execute(
            text(
                "INSERT INTO pgcontents.files (name, user_id, parent_name, content, created_at)"
                " VALUES (:n, :u, :p, :c, coalesce(:t, now()))"
            ),
            {"n": name, "u": user, "p": parent, "c": content, "t": when},
        )

    for user in ("alice", "jdoe", "ghost"):
        await directory(user, "/", None)
    await directory("alice", "/project/", "/")
    await directory("alice", "/project/empty/", "/project/")
    await file("alice", "/", "hello.txt", b64(b"hello, world\n"), OLD_TIME)
    await file("alice", "/project/", "analysis.ipynb", b64(NOTEBOOK.encode()))
    await file("alice", "/project/", "blob.bin", b64(BINARY))
    await file("alice", "/", "versions.txt", b64(b"old"), datetime(2018, 1, 1))
    await file("alice", "/", "versions.txt", b64(b"newest"), datetime(2020, 1, 1))
    await file("alice", "/", "broken.txt", b"%%% not base64 %%%")
    await file("alice", "/", "back\\slash.txt", b64(b"x"))
    await file("alice", "/", "taken.txt", b64(b"from pgcontents"))
    await file("jdoe", "/", "secret.txt", Fernet(KEY).encrypt(b64(b"encrypted text")))
    await file("ghost", "/", "nobody.txt", b64(b"no gilhub user"))
    await conn.execute(
        text(
            "INSERT INTO pgcontents.remote_checkpoints (user_id, path, content, last_modified)"
            " VALUES ('alice', '/project/analysis.ipynb', :c, :t),"
            "        ('alice', '/gone.txt', :c, :t)"
        ),
        {"c": b64(b"checkpointed"), "t": OLD_TIME},
    )


@pytest.fixture(scope="module")
async def prepared(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(PGCONTENTS_SCHEMA)
        await _fill(conn)
        await create_account(conn, "alice")
        await create_account(conn, "jane")
    async with engine.begin() as conn:
        alice = await get_user_by_name(conn, "alice")
        await query.write_file(conn, alice.db_role, "taken.txt", b"already in gilhub")
    return engine


async def _role(engine: AsyncEngine, name: str) -> str:
    async with engine.connect() as conn:
        return (await get_user_by_name(conn, name)).db_role


async def _content(engine: AsyncEngine, role: str, path: str) -> bytes | None:
    async with engine.connect() as conn:
        record = await query.read_file(conn, role, path)
    return None if record is None else record.content


@pytest.fixture(scope="module")
async def report(prepared: AsyncEngine):
    job = PgcontentsImport(
        prepared, prepared, user_map={"jdoe": "jane"}, fernet=fernet_from_keys([KEY.decode()])
    )
    return await job.run()


async def test_counts(report):
    assert report.copied == {"users": 2, "directories": 2, "files": 5, "checkpoints": 1}


async def test_files_arrive_decoded_with_their_times(prepared, report):
    alice = await _role(prepared, "alice")
    assert await _content(prepared, alice, "hello.txt") == b"hello, world\n"
    assert await _content(prepared, alice, "project/analysis.ipynb") == NOTEBOOK.encode()
    assert await _content(prepared, alice, "project/blob.bin") == BINARY
    async with prepared.connect() as conn:
        record = await query.read_file(conn, alice, "hello.txt", with_content=False)
        listing = await query.list_directory(conn, alice, "project")
    assert record.last_modified.replace(tzinfo=None) == OLD_TIME
    assert {entry.path for entry in listing} == {
        "project/empty",
        "project/analysis.ipynb",
        "project/blob.bin",
    }


async def test_only_the_newest_version_is_copied(prepared, report):
    alice = await _role(prepared, "alice")
    assert await _content(prepared, alice, "versions.txt") == b"newest"
    assert ("alice:/versions.txt (older versions)", "only the newest version is copied") in (
        report.skipped
    )


async def test_encrypted_content_is_decrypted_for_the_mapped_user(prepared, report):
    assert await _content(prepared, await _role(prepared, "jane"), "secret.txt") == (
        b"encrypted text"
    )


async def test_checkpoints_are_attached_to_their_file(prepared, report):
    alice = await _role(prepared, "alice")
    async with prepared.connect() as conn:
        found = await query.list_checkpoints(conn, alice, "project/analysis.ipynb")
    assert len(found) == 1


async def test_everything_skipped_is_reported_with_why(prepared, report):
    reasons = dict(report.skipped)
    assert "base64" in reasons["alice:/broken.txt"]
    assert "backslash" in reasons["alice:/back\\slash.txt"]
    assert "not overwritten" in reasons["alice:/taken.txt"]
    assert "no gilhub user named 'ghost'" in reasons["user ghost"]
    assert "not copied" in reasons["alice:/gone.txt (checkpoint)"]
    alice = await _role(prepared, "alice")
    assert await _content(prepared, alice, "taken.txt") == b"already in gilhub"


async def test_without_the_key_encrypted_files_are_skipped(prepared, report):
    job = PgcontentsImport(prepared, prepared, user_map={"jdoe": "jane"})
    again = await job.run()
    assert again.copied["files"] == 0
    assert "Fernet key" in dict(again.skipped)["jdoe:/secret.txt"]


async def test_command_line(prepared, report, database_url: URL, tmp_path):
    """``gilhub storage import-pgcontents``: secrets from the environment and a key file."""
    key_file = tmp_path / "keys"
    key_file.write_text(Fernet.generate_key().decode() + "\n" + KEY.decode() + "\n")
    libpq = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    (tmp_path / "gilhub_config.py").write_text(f"c.GilHub.db_url = {libpq!r}\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gilhub",
            "storage",
            "import-pgcontents",
            f"--data-dir={tmp_path}",
            "--user-map=jdoe=jane",
            f"--fernet-key-file={key_file}",
        ],
        env={**os.environ, "GILHUB_PGCONTENTS_URL": libpq},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("Copied 2 users, 0 directories, 0 files, 0 checkpoints.")
    assert "already exists in gilhub (not overwritten)" in completed.stdout
