"""The ``gilhub`` command line, run as real subprocesses against a real database."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.app import GilHub
from gilhub.auth.passwords import PasswordHasher
from gilhub.auth.tokens import identity_for_token
from gilhub.users import get_password_hash, get_user_by_name
from tests.hub.conftest import RunningHub, write_config
from tests.hub.hub_process import HubProcess
from tests.hub.servers_harness import server_python

verify_password = PasswordHasher(workers=1).verify


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout.decode()
        self.stderr = stderr.decode()


async def gilhub(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> Result:
    """``gilhub ARGS`` in ``cwd``; ``env`` adds to the environment (without XDG_RUNTIME_DIR,
    as under a service manager or ``su``: platformdirs must not warn about it)."""
    environment = {key: value for key, value in os.environ.items() if key != "XDG_RUNTIME_DIR"}
    process = await asyncio.create_subprocess_exec(
        server_python(),
        "-m",
        "gilhub",
        *args,
        cwd=cwd,
        env={**environment, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate(stdin.encode() if stdin is not None else b"")
    return Result(process.returncode, stdout, stderr)


def assert_clean_failure(result: Result, message: str) -> None:
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_help_all_lists_the_options(tmp_path: Path) -> None:
    result = await gilhub("--help-all", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--ip", "--port", "--data-dir", "--config", "--db-url", "--debug"):
        assert option in result.stdout
    assert "user" in result.stdout and "token" in result.stdout
    assert "--ServerManager.cull_idle_timeout" in result.stdout  # the spawner's options too
    for option in (
        "--Accounts.hashing_workers",
        "--LDAPAuthenticator.bind_dn_template",
        "--SlurmSpawner.partition",
        "--SlurmQueue.poll_interval",
        "--GilHub.embedded_db_listen_address",
    ):
        assert option in result.stdout  # accounts and authenticators too
    subcommands = (["user", "add"], ["user", "list"], ["user", "remove"], ["user", "password"])
    for subcommand in (*subcommands, ["token"]):
        help_text = await gilhub(*subcommand, "--help", cwd=tmp_path)
        assert help_text.returncode == 0, help_text.stderr
        assert "--data-dir" in help_text.stdout and "Traceback" not in help_text.stderr


async def test_user_add_generates_a_password_shown_once(workdir: Path, engine: AsyncEngine) -> None:
    result = await gilhub("user", "add", "alice", cwd=workdir)
    assert result.returncode == 0, result.stderr
    password = re.search(r"Password \(shown only now\): (\S+)", result.stdout).group(1)
    async with engine.connect() as conn:
        assert await verify_password(await get_password_hash(conn, "alice"), password)
        user = await get_user_by_name(conn, "alice")
    assert user is not None and not user.is_admin and user.db_role


async def test_user_add_admin_with_password_from_stdin(workdir: Path, engine: AsyncEngine) -> None:
    result = await gilhub(
        "user", "add", "bob", "--admin", "--password-stdin", cwd=workdir, stdin="bobs-secret-pw\n"
    )
    assert result.returncode == 0, result.stderr
    assert "bobs-secret-pw" not in result.stdout
    async with engine.connect() as conn:
        assert await verify_password(await get_password_hash(conn, "bob"), "bobs-secret-pw")
        assert (await get_user_by_name(conn, "bob")).is_admin


async def test_user_add_refuses_bad_input(workdir: Path) -> None:
    await gilhub("user", "add", "carol", cwd=workdir)
    assert_clean_failure(await gilhub("user", "add", "carol", cwd=workdir), "already exists")
    assert_clean_failure(
        await gilhub("user", "add", "<b>Carol</b>", cwd=workdir), "invalid user name"
    )
    short = await gilhub("user", "add", "dora", "--password-stdin", cwd=workdir, stdin="short\n")
    assert_clean_failure(short, "at least 8 characters")
    assert_clean_failure(await gilhub("user", "add", cwd=workdir), "expected NAME")


async def test_user_list_and_remove(workdir: Path) -> None:
    await gilhub("user", "add", "erin", cwd=workdir)
    listing = await gilhub("user", "list", cwd=workdir)
    assert listing.returncode == 0
    assert re.search(r"^erin\s+no\s", listing.stdout, re.MULTILINE)
    assert (await gilhub("user", "remove", "erin", cwd=workdir)).returncode == 0
    assert "erin" not in (await gilhub("user", "list", cwd=workdir)).stdout
    assert_clean_failure(await gilhub("user", "remove", "erin", cwd=workdir), "no user named")


async def test_token_prints_a_working_token(workdir: Path, engine: AsyncEngine) -> None:
    await gilhub("user", "add", "frank", cwd=workdir)
    result = await gilhub("token", "frank", "--note=culler", cwd=workdir)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    async with engine.connect() as conn:
        assert (await identity_for_token(conn, token)).user.name == "frank"
    assert_clean_failure(await gilhub("token", "nobody", cwd=workdir), "no user named")


async def test_config_flag_after_the_subcommand(
    workdir: Path, database_url: URL, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "elsewhere", database_url)
    await gilhub("user", "add", "gina", cwd=workdir)
    listing = await gilhub("user", "list", f"--config={config}", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "gina" in listing.stdout


async def test_cli_works_while_the_hub_runs(hub: RunningHub, workdir: Path) -> None:
    await gilhub("user", "add", "henry", "--password-stdin", cwd=workdir, stdin="henrys-password\n")
    assert (await hub.login("henry", "henrys-password")).cookies


async def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    write_config(tmp_path, URL.create("postgresql+psycopg", "x", "y", "127.0.0.1", 1, "gilhub"))
    for args in (["user", "list"], []):
        result = await gilhub(*args, cwd=tmp_path)
        assert result.returncode == 1
        assert "cannot use the database at postgresql+psycopg://x:***@127.0.0.1:1/gilhub" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr


def test_missing_part_subcommand_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    app = GilHub()
    app.subcommands = {"ghost": ("gilhub.ghost.cli.GhostApp", "A part not installed.")}
    with pytest.raises(SystemExit) as exit_info:
        app.initialize(["ghost"])
    assert exit_info.value.code == 1
    assert "'gilhub ghost' is not available" in capsys.readouterr().err


@pytest.fixture
def fresh_database_url(postgres) -> URL:
    name = f"gilhub_first_start_{os.getpid()}"
    conninfo = postgres.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres.url.set(database=name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def run_hub_until_listening(cwd: Path) -> tuple[str, str]:
    """Start ``gilhub --port 0``, wait for "listening", stop it with SIGTERM (or
    terminate on Windows); return its stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        server_python(),  # as root, users' accounts must be able to run the hub's Python
        "-m",
        "gilhub",
        "--port=0",
        f"--data-dir={cwd / 'data'}",
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr_lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("is listening on" in line for line in stderr_lines):
                line = await process.stderr.readline()
                assert line, "gilhub exited before listening:\n" + "".join(stderr_lines)
                stderr_lines.append(line.decode())
    finally:
        process.terminate()
        stdout, rest = await process.communicate()
    assert process.returncode in (0, -15), "".join(stderr_lines) + rest.decode()
    return stdout.decode(), "".join(stderr_lines) + rest.decode()


async def test_first_start_creates_admin_and_prints_password_once(
    fresh_database_url: URL, tmp_path: Path
) -> None:
    write_config(tmp_path, fresh_database_url)
    first_out, first_err = await run_hub_until_listening(tmp_path)
    match = re.search(
        r"administrator account 'admin' with the one-time\s+password: (\S+)", first_out
    )
    assert match, first_out + first_err
    second_out, _ = await run_hub_until_listening(tmp_path)
    assert "password" not in second_out
    assert match.group(1) not in second_out


async def test_port_already_taken_is_one_clear_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await gilhub(f"--port={port}", f"--data-dir={workdir / 'data'}", cwd=workdir)
    assert_clean_failure(result, f"cannot listen on 127.0.0.1:{port}")


async def test_a_url_that_is_not_postgresql_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "gilhub_config.py").write_text("c.GilHub.db_url = 'mysql://x@y/z'\n")
    result = await gilhub("user", "list", cwd=tmp_path)
    assert_clean_failure(result, "db_url is not a PostgreSQL URL")


async def test_zero_configuration_start_uses_the_embedded_database(tmp_path: Path) -> None:
    """No config, no --db-url: PostgreSQL from the wheel in the data directory, stopped
    again when the hub exits."""
    stdout, stderr = await run_hub_until_listening(tmp_path)
    assert "Starting the embedded PostgreSQL" in stderr
    assert "RuntimeDirWarning" not in stderr
    assert "administrator account 'admin'" in stdout
    pgdata = tmp_path / "data" / "postgres"
    assert (pgdata / "PG_VERSION").is_file()
    assert not (pgdata / "postmaster.pid").exists()  # the cluster was stopped with the hub


async def test_config_file_in_the_data_directory_is_read(
    database_url: URL, workdir: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    write_config(data_dir, database_url)
    await gilhub("user", "add", "ivan", cwd=workdir)
    listing = await gilhub("user", "list", f"--data-dir={data_dir}", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "ivan" in listing.stdout


async def test_user_password_recovers_a_lost_password(workdir: Path, engine: AsyncEngine) -> None:
    await gilhub("user", "add", "jack", cwd=workdir)
    result = await gilhub("user", "password", "jack", cwd=workdir)
    assert result.returncode == 0, result.stderr
    generated = re.search(r"Password \(shown only now\): (\S+)", result.stdout).group(1)
    chosen = await gilhub(
        "user", "password", "jack", "--password-stdin", cwd=workdir, stdin="jacks-new-pw\n"
    )
    assert chosen.returncode == 0 and "jacks-new-pw" not in chosen.stdout
    async with engine.connect() as conn:
        stored = await get_password_hash(conn, "jack")
    assert await verify_password(stored, "jacks-new-pw")
    assert not await verify_password(stored, generated)
    assert_clean_failure(await gilhub("user", "password", "nobody", cwd=workdir), "no user named")


async def test_commands_refuse_to_create_a_database_elsewhere(tmp_path: Path) -> None:
    """The issue's trap: a command run outside the hub's directory made a second database."""
    result = await gilhub("user", "add", "kim", cwd=tmp_path)
    assert_clean_failure(result, f"there is no hub database in {tmp_path / 'gilhub-data'}")
    assert "--data-dir=DIR or GILHUB_DATA_DIR=DIR" in result.stderr
    assert not (tmp_path / "gilhub-data").exists()
    created = await gilhub("user", "add", "kim", "--create", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Added user kim." in created.stdout
    assert "RuntimeDirWarning" not in created.stderr + created.stdout


async def test_commands_find_the_running_hubs_database(tmp_path: Path) -> None:
    """--data-dir, else GILHUB_DATA_DIR, else the config file: the CLI uses the running
    hub's PostgreSQL, says so, and starts none of its own."""
    hub = HubProcess(tmp_path / "srv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    await hub.start()
    try:
        assert hub.process is not None
        running = f"the hub's database in {hub.data_dir} (running hub, pid {hub.process.pid})"
        by_variable = await gilhub(
            "user", "add", "lena", cwd=elsewhere, env={"GILHUB_DATA_DIR": str(hub.data_dir)}
        )
        (elsewhere / "gilhub_config.py").write_text(f"c.GilHub.data_dir = {str(hub.data_dir)!r}\n")
        by_config = await gilhub("user", "list", cwd=elsewhere)
        by_flag = await gilhub("user", "list", f"--data-dir={hub.data_dir}", cwd=tmp_path)
        wrong_variable = await gilhub(
            "user", "list", cwd=elsewhere, env={"GILHUB_DATA_DIR": str(tmp_path / "nothing")}
        )
    finally:
        await hub.stop()
    for result in (by_variable, by_config, by_flag):
        assert result.returncode == 0, result.stderr
        assert running in result.stderr
        assert "Starting the embedded PostgreSQL" not in result.stderr
        assert "Warning" not in result.stderr
    assert "lena" in by_config.stdout and "lena" in by_flag.stdout
    # the environment wins over the config file, and names no database: refused
    assert_clean_failure(wrong_variable, f"there is no hub database in {tmp_path / 'nothing'}")
    stopped = await gilhub("user", "list", cwd=elsewhere)
    assert f"the hub's database in {hub.data_dir} (the hub is not running)" in stopped.stderr
    assert "lena" in stopped.stdout
