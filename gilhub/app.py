"""The ``gilhub`` command: the hub process and its subcommands.

``gilhub`` alone runs the hub: it opens the database (the embedded PostgreSQL
in the data directory unless ``db_url`` is set), applies the migrations, loads
the persistent hub secret, creates the first admin on the very first start,
re-adopts running user servers, and serves pages, API and proxy with Tornado.

Configuration follows Jupyter's conventions: traits set in ``gilhub_config.py``
(in the current directory, the data directory, or ``--config``) and on the
command line (which wins).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.httpserver import HTTPServer
from tornado.log import access_log
from tornado.web import StaticFileHandler
from traitlets import (
    Bool,
    Dict,
    Float,
    Instance,
    Integer,
    List,
    TraitType,
    Type,
    Unicode,
    Union,
    default,
    validate,
)
from traitlets.config import Application, Config, catch_config_error

from gilhub import __version__
from gilhub.accounts import AccountEvents, Accounts, create_account
from gilhub.auth.authenticator import Authenticator, AuthenticatorType
from gilhub.auth.cache import AuthCache
from gilhub.auth.passwords import generate_password
from gilhub.auth.secrets_store import claim_once, get_or_create_secret
from gilhub.auth.sessions import purge_expired_sessions
from gilhub.auth.throttle import LoginThrottle
from gilhub.db import DatabaseUnavailable, apply_migrations, create_engine, sqlalchemy_url
from gilhub.db.embedded import has_embedded_cluster, restrict_data_dir
from gilhub.db.engine import use_selector_loop_on_windows
from gilhub.db.notify import libpq_url
from gilhub.db.outage import OutageReporter, is_database_unavailable
from gilhub.hub_record import forget_running_hub, record_running_hub, running_hub_pid
from gilhub.pagetime import time_element
from gilhub.parts import Part, load_parts
from gilhub.resolver import use_numeric_address_resolver
from gilhub.resources import static_dir, templates_dir
from gilhub.spawner.isolation import NOT_ISOLATED_WARNING, Isolation, IsolationUnavailable

if TYPE_CHECKING:
    from gilhub.db.supervisor import PostgresSupervisor
    from gilhub.request_gate import HubApplication

CONFIG_FILE_NAME = "gilhub_config.py"
#: Seconds between housekeeping rounds (shorter when uploads expire sooner).
HOUSEKEEPING_INTERVAL = 3600.0
FIRST_ADMIN = "admin"

#: The hub's own modules whose module-level ``handlers`` list is served; the parts'
#: (repository, bibliography, …) come from their declarations (gilhub.parts). The proxy's
#: route comes first: most requests are proxied, and routes are tried in order.
CORE_HANDLER_MODULES = ("gilhub.proxy", "gilhub.handlers", "gilhub.apihandlers")

#: Options every gilhub command takes (subcommands too): where the database is.
HUB_ALIASES = {
    "data-dir": "GilHub.data_dir",
    "db-url": "GilHub.db_url",
    "config": "GilHub.config_file",
    "log-level": "Application.log_level",
}
HUB_FLAGS = {
    "debug": ({"Application": {"log_level": 10}}, "Log everything, for debugging."),
    "create": (
        {"GilHub": {"create_database": True}},
        "Create a new embedded database when the data directory has none (commands other"
        " than the hub itself refuse to, so that they never work on a database the hub"
        " does not use).",
    ),
}
#: The environment variable naming the data directory (see GilHub.data_dir).
DATA_DIR_VARIABLE = "GILHUB_DATA_DIR"

#: The hub's own command-line tools (imported only when asked for); the parts add theirs.
CORE_SUBCOMMANDS = {
    "user": ("gilhub.cli.UserApp", "Add, list and remove users."),
    "token": ("gilhub.cli.TokenApp", "Print a new API token for a user."),
    "make-cert": ("gilhub.tls.MakeCertApp", "Write a self-signed certificate for HTTPS."),
    "storage": ("gilhub.contents.cli.StorageApp", "Manage notebook storage."),
}


class HubStartError(RuntimeError):
    """The hub cannot start; the message says why in one line."""


class PathTrait(TraitType):
    """A filesystem path, given as ``str`` or ``Path``, held as an absolute ``Path``."""

    info_text = "a filesystem path"

    def validate(self, obj: Any, value: Any) -> Path:
        if isinstance(value, (str, Path)) and str(value):
            return Path(value).expanduser().absolute()
        self.error(obj, value)


class GilHub(Application):
    """A lightweight multi-user notebook hub with notebooks stored in PostgreSQL."""

    name = "gilhub"
    version = __version__
    description = __doc__
    examples = """
    gilhub                                  # run the hub on http://127.0.0.1:8000/
    gilhub --ip=0.0.0.0 --port=8080 --data-dir=/srv/gilhub
    gilhub --db-url=postgresql://gilhub@dbhost/gilhub
    gilhub user add alice --password-stdin  # then type the password
    gilhub token alice                      # print a new API token for alice
    """

    aliases = {
        **HUB_ALIASES,
        "ip": "GilHub.ip",
        "port": "GilHub.port",
        "base-url": "GilHub.base_url",
        "ssl-cert": "GilHub.ssl_cert",
        "ssl-key": "GilHub.ssl_key",
    }
    flags = {
        **HUB_FLAGS,
        "generate-config": (
            {"GilHub": {"generate_config": True}},
            f"Write a default {CONFIG_FILE_NAME} with every option commented out.",
        ),
    }
    subcommands = {
        **CORE_SUBCOMMANDS,
        **{name: spec for part in load_parts() for name, spec in part.subcommands.items()},
    }

    ip = Unicode("127.0.0.1", config=True, help="The address the hub listens on.")
    port = Integer(8000, config=True, help="The port the hub listens on (0: any free port).")
    base_url = Unicode("/", config=True, help="The URL prefix of the whole hub.")
    ssl_cert = Unicode(
        "",
        config=True,
        help="""Serve HTTPS with this certificate (PEM; with ssl_key). Cookies are then
        Secure and pages send Strict-Transport-Security. 'gilhub make-cert' writes a
        self-signed one.""",
    )
    ssl_key = Unicode("", config=True, help="The private key (PEM) of ssl_cert.")
    public_url = Unicode(
        "",
        config=True,
        help="""The URL people reach the hub at, e.g. https://hub.lab.example.org/ (behind a
        reverse proxy: the proxy's). Links the hub builds use it, never a request's Host
        header. Default: the address the hub listens on.""",
    )
    data_dir = PathTrait(
        "gilhub-data",
        config=True,
        help=f"""Where the hub keeps its files (the embedded PostgreSQL cluster among them).
        Every gilhub command finds it the same way: --data-dir, else the environment
        variable {DATA_DIR_VARIABLE}, else this setting in the config file, else
        ./gilhub-data.""",
    )
    create_database = Bool(
        False,
        config=True,
        help="""Let a command other than the hub itself create a new embedded database
        (by default they refuse to, and say how to point them at the hub's).""",
    )
    db_url = Union(
        [Instance(URL), Unicode()],
        default_value="",
        config=True,
        help="""URL of a PostgreSQL database to use instead of the embedded one,
        e.g. postgresql://gilhub:secret@dbhost:5432/gilhub. The role must be able to
        create roles (each user's server logs in with a role of its own).
        Once the hub has started this holds the URL in use (a SQLAlchemy URL).""",
    )
    embedded_db_listen_address = Unicode(
        "",
        config=True,
        help="""An address of this machine on which the embedded PostgreSQL also listens
        (TCP), for user servers on other machines (a cluster's nodes); '' (the default):
        a Unix socket only. Passwords are required (scram-sha-256).""",
    )
    embedded_db_port = Integer(
        5432, config=True, help="The TCP port of the embedded PostgreSQL (with a listen address)."
    )
    embedded_db_allowed_networks = List(
        Unicode(),
        config=True,
        help="""Networks (CIDR, e.g. 10.1.0.0/16) whose machines may log in to the embedded
        PostgreSQL over TCP, with passwords; the loopback always may.""",
    )
    config_file = Unicode(
        "", config=True, help=f"The configuration file (default: {CONFIG_FILE_NAME})."
    )
    generate_config = Bool(False, config=True, help="Write the default config file and exit.")
    trust_xheaders = Bool(
        False,
        config=True,
        help="""Trust X-Forwarded-Proto/X-Real-Ip from a reverse proxy in front of the hub.
        Enable only behind such a proxy: otherwise clients could claim any address.""",
    )
    session_max_age_days = Float(14.0, config=True, help="How long a login lasts, in days.")
    login_max_failures = Integer(
        5, config=True, help="Failed logins for one user name before its logins are paused."
    )
    login_max_failures_per_address = Integer(
        30,
        config=True,
        help="Failed logins from one client address before its logins are paused "
        "(higher: a lab may share one address).",
    )
    login_failure_window = Float(
        300.0, config=True, help="Seconds over which failed logins are counted."
    )
    login_failure_pause = Float(
        15.0,
        config=True,
        help="""Seconds logins pause once a limit is reached (per user and address, or per
        address); doubled by every further failure, at most login_failure_window.""",
    )
    authenticator_class = AuthenticatorType(
        "gilhub.auth.authenticator.PasswordAuthenticator",
        klass=Authenticator,
        config=True,
        help="""Who may log in: a subclass of gilhub.auth.authenticator.Authenticator, or the
        name of one registered in the entry-point group gilhub.authenticators
        ("password": gilhub's own accounts, the default; "ldap": a directory).""",
    )
    max_body_size = Integer(
        128 * 1024 * 1024,
        config=True,
        help="""Largest request body (bytes) an authenticated request may send to the hub's
        pages and API that take files (e.g. a BibTeX upload); those bodies are held in memory.
        Forms and other API calls take at most 1 MiB. Requests proxied to user servers are
        streamed and not limited.""",
    )
    unauthenticated_body_limit = Integer(
        64 * 1024,
        config=True,
        help="""Largest request body (bytes) accepted before its sender is authenticated
        (the login form, for one). Larger bodies are refused with 413 unread.""",
    )
    landing_path = Unicode(
        "lab",
        config=True,
        help="""Where people land on their server: a path under /user/NAME/
        ("lab" for JupyterLab, "tree" for Notebook 7, "" for the server's root).""",
    )
    admin_access = Bool(
        False, config=True, help="Let administrators use other users' servers through the proxy."
    )
    spawner_class = Type(
        "gilhub.spawner.local.LocalProcessSpawner",
        klass="gilhub.spawner.base.Spawner",
        config=True,
        help="How user servers are started (a subclass of gilhub.spawner.base.Spawner).",
    )
    auth_cache_ttl = Float(
        5.0,
        config=True,
        help="""Seconds a resolved login cookie or API token is remembered in memory (0: off).
        Account changes apply at once, also those made by the command line (the hub hears
        of them through PostgreSQL notifications).""",
    )
    tornado_settings = Dict(config=True, help="Extra settings for the Tornado application.")
    upload_chunk_max_age = Float(
        24 * 3600.0,
        config=True,
        help="""Seconds after its last chunk that an unfinished chunked upload is removed
        (interrupted uploads otherwise keep their chunks in the database). The hub removes
        everyone's; each user server, which gets this value, removes its own meanwhile.""",
    )

    db = Instance(AsyncEngine, allow_none=True, help="The superuser engine (after start).")
    secret = Instance(bytes, allow_none=True, help="The persistent hub secret (after start).")
    servers = Instance("gilhub.servers.ServerManager", allow_none=True)
    accounts = Instance(Accounts, allow_none=True, help="The accounts service (after start).")
    authenticator = Instance(Authenticator, allow_none=True, help="Who logs in (after start).")
    isolation = Instance(
        "gilhub.spawner.isolation.Isolation",
        allow_none=True,
        help="How users' servers are kept apart here (after start; the admin page shows it).",
    )
    upstream_pool = Instance(
        "gilhub.proxy.UpstreamPool",
        allow_none=True,
        help="Keep-alive connections to user servers, shared by the proxy (after start).",
    )
    # the parts' services (see gilhub.parts: each part's start hook builds its own)
    repository = Instance(
        "gilhub.repository.service.RepositoryService", allow_none=True, help="(after start)"
    )
    bibliography = Instance(
        "gilhub.bibliography.service.LabBibliography", allow_none=True, help="(after start)"
    )
    notebook_templates = Instance(
        "gilhub.notebook_templates.service.TemplateService",
        allow_none=True,
        help="(after start; hub.templates is the jinja2 environment of the pages)",
    )
    runs = Instance("gilhub.runs.service.Runs", allow_none=True, help="(after start)")
    activity = Instance("gilhub.activity.service.Activity", allow_none=True, help="(after start)")
    bound_port = Integer(0, help="The port the hub actually listens on (after start).")

    @validate("base_url")
    def _valid_base_url(self, proposal: Any) -> str:
        value = "/" + proposal["value"].strip("/") + "/"
        return "/" if value == "//" else value

    @property
    def hub_prefix(self) -> str:
        return self.base_url + "hub/"

    @property
    def nav_links(self) -> list[tuple[str, str]]:
        """``(title, url)`` of each part's link in the page header."""
        return [
            (part.nav.title, self.hub_prefix + part.nav.path) for part in self.parts if part.nav
        ]

    @property
    def classes(self) -> list[type]:  # type: ignore[override]
        """What --help-all and --generate-config document: the hub's classes, then the parts'."""
        from gilhub.auth.authenticator import PasswordAuthenticator
        from gilhub.auth.ldap import LDAPAuthenticator
        from gilhub.servers import ServerManager
        from gilhub.spawner.local import LocalProcessSpawner
        from gilhub.spawner.slurm import SlurmSpawner
        from gilhub.spawner.slurm_queue import SlurmQueue

        core = [
            GilHub,
            Accounts,
            PasswordAuthenticator,
            LDAPAuthenticator,
            ServerManager,
            LocalProcessSpawner,
            SlurmSpawner,
            SlurmQueue,
        ]
        return core + [cls for part in self.parts for cls in part.configurable_classes()]

    @default("log_level")
    def _default_log_level(self) -> int:
        return 20

    @default("log_format")
    def _default_log_format(self) -> str:
        return "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"

    def __init__(self, **kwargs: Any) -> None:
        self.parts: list[Part] = load_parts()
        super().__init__(**kwargs)
        self.embedded: Any = None
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())),
            autoescape=True,
        )
        self.templates.filters["time"] = time_element
        self.auth_cache = AuthCache(ttl=0)
        self.http_server: HTTPServer | None = None
        self._stop_requested: asyncio.Event | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._account_events: AccountEvents | None = None
        #: Logs each database outage once (handlers, housekeeping and the spawner report to it).
        self.database_outage = OutageReporter(self.log)
        self.db_supervisor: PostgresSupervisor | None = None

    # -- configuration --------------------------------------------------

    @catch_config_error
    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        # flags given after a subcommand (gilhub user list --data-dir X) configure the hub:
        # they say where the config file is, and then override it
        subcommand_flags = [app.cli_config for app in self._subapp_chain()]
        for flags in subcommand_flags:
            self.update_config(flags)
        data_dir_from_environment = self._data_dir_from_environment(subcommand_flags)
        if data_dir_from_environment:  # where the config file is looked for ...
            self.data_dir = data_dir_from_environment
        self.load_config_files()
        if data_dir_from_environment:  # ... and it wins over the config file
            self.data_dir = data_dir_from_environment
        for flags in subcommand_flags:
            self.update_config(flags)
        self._route_tornado_logs()

    def _data_dir_from_environment(self, subcommand_flags: list[Config]) -> str | None:
        """``GILHUB_DATA_DIR``, unless the command line names the data directory."""
        named = any(
            "data_dir" in flags.get("GilHub", {}) for flags in (self.cli_config, *subcommand_flags)
        )
        value = os.environ.get(DATA_DIR_VARIABLE, "")
        return None if named or not value else value

    def _route_tornado_logs(self) -> None:
        """Tornado's access and error logs go through the hub's log (one format, one level)."""
        for name in ("tornado.access", "tornado.application", "tornado.general"):
            logger = logging.getLogger(name)
            logger.parent = self.log
            logger.propagate = True
            logger.setLevel(self.log.level)

    def _subapp_chain(self) -> list[Application]:
        chain, app = [], self.subapp
        while app is not None:
            chain.append(app)
            app = app.subapp
        return chain

    def load_config_files(self) -> None:
        if self.config_file:
            path = Path(self.config_file).expanduser()
            self.load_config_file(path.name, path=[str(path.parent.resolve())])
            return
        # later files override earlier ones; the command line overrides both
        for directory in (self.data_dir, Path.cwd()):
            if (directory / CONFIG_FILE_NAME).is_file():
                self.load_config_file(CONFIG_FILE_NAME, path=[str(directory)])

    def initialize_subcommand(self, subc: str, argv: list[str] | None = None) -> None:
        try:
            super().initialize_subcommand(subc, argv)
        except ImportError as error:
            self.exit_with_error(f"'gilhub {subc}' is not available in this install ({error}).")

    def exit_with_error(self, message: str) -> None:
        print(f"gilhub: {message}", file=sys.stderr)
        self.exit(1)

    # -- database -------------------------------------------------------

    async def open_database(self, *, create: bool = True) -> AsyncEngine:
        """Connect (starting the embedded cluster if no ``db_url``) and migrate.

        Without ``create``, a data directory that holds no embedded database yet is
        refused rather than given a new one. Raises :class:`DatabaseUnavailable` with a
        one-line reason.
        """
        if self.db_url:
            try:
                url = sqlalchemy_url(self.db_url)
            except (ValueError, ArgumentError) as error:
                raise DatabaseUnavailable(f"db_url is not a PostgreSQL URL: {error}") from error
        else:
            if not (create or has_embedded_cluster(self.data_dir)):
                raise DatabaseUnavailable(self._no_database_here())
            self.embedded = await asyncio.to_thread(self._start_embedded)
            url = self.embedded.url
        await asyncio.to_thread(restrict_data_dir, self.data_dir)
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            await apply_migrations(engine)
        except (SQLAlchemyError, OSError) as error:
            await engine.dispose()
            where = url.render_as_string(hide_password=True)
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise DatabaseUnavailable(f"cannot use the database at {where}: {reason}") from error
        self.database_outage.watch(engine)
        self.db_url = url
        self.db = engine
        return engine

    def _no_database_here(self) -> str:
        return (
            f"there is no hub database in {self.data_dir}. Point this command at the hub's"
            f" data directory with --data-dir=DIR or {DATA_DIR_VARIABLE}=DIR (or"
            f" c.GilHub.data_dir in {CONFIG_FILE_NAME}), or --db-url for a PostgreSQL"
            " server; --create makes a new, empty hub database here."
        )

    def describe_database(self) -> str:
        """Which database this process uses, for a command to say (after open_database)."""
        if self.embedded is None:
            assert isinstance(self.db_url, URL)
            return f"the database at {self.db_url.render_as_string(hide_password=True)}"
        hub_pid = running_hub_pid(self.data_dir)
        running = f"running hub, pid {hub_pid}" if hub_pid else "the hub is not running"
        return f"the hub's database in {self.data_dir} ({running})"

    def _start_embedded(self) -> Any:
        from gilhub.db.embedded import postmaster_process, start_embedded

        pgdata = self.data_dir / "postgres"
        if postmaster_process(pgdata.resolve()) is None:
            self.log.info("Starting the embedded PostgreSQL in %s", pgdata)
        else:
            self.log.debug("Connecting to the embedded PostgreSQL running in %s", pgdata)
        try:
            return start_embedded(
                self.data_dir,
                listen=(
                    (self.embedded_db_listen_address, self.embedded_db_port)
                    if self.embedded_db_listen_address
                    else None
                ),
                allowed_networks=tuple(self.embedded_db_allowed_networks),
            )
        except Exception as error:  # the wheel raises plain exceptions of several kinds
            raise DatabaseUnavailable(f"cannot start the embedded PostgreSQL: {error}") from error

    def supervise_embedded_database(self) -> None:
        """Restart the embedded PostgreSQL whenever it dies (nothing to do with ``db_url``)."""
        from gilhub.db.supervisor import PostgresSupervisor

        if self.embedded is not None and self.db_supervisor is None:
            self.db_supervisor = PostgresSupervisor(self.embedded, self.log)
            self.db_supervisor.start()

    async def close_database(self) -> None:
        if self.db_supervisor is not None:
            await self.db_supervisor.stop()
            self.db_supervisor = None
        if self.db is not None:
            await self.db.dispose()
            self.db = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None

    @property
    def login_throttle(self) -> LoginThrottle:
        return LoginThrottle(
            max_failures_per_user=self.login_max_failures,
            max_failures_per_address=self.login_max_failures_per_address,
            window=timedelta(seconds=self.login_failure_window),
            pause=timedelta(seconds=self.login_failure_pause),
        )

    async def create_first_admin(self) -> None:
        """On the very first start (of this database), create ``admin`` and print its password."""
        assert self.db is not None and self.accounts is not None
        password = generate_password()
        async with self.db.begin() as conn:
            if not await claim_once(conn, "first-admin-created"):
                return
            password_hash = await self.accounts.hasher.hash(password)
            await create_account(
                conn,
                FIRST_ADMIN,
                password_hash=password_hash,
                admin=True,
                must_change_password=True,
            )
        print(
            f"\n  gilhub: created the administrator account '{FIRST_ADMIN}' with the one-time\n"
            f"  password: {password}\n"
            "  It is shown only this once: the first login asks for a new one.\n"
            f"  Lost it? 'gilhub user password {FIRST_ADMIN}' sets a new one.\n",
            flush=True,
        )

    # -- web application ------------------------------------------------

    def collect_handlers(self) -> list[tuple]:
        """The core's routes, then every part's, under the base URL."""
        handlers: list[tuple] = []
        for module_name in CORE_HANDLER_MODULES:
            handlers.extend(importlib.import_module(module_name).handlers)
        for part in self.parts:
            handlers.extend(part.handler_specs())
        return [self._prefixed(spec) for spec in handlers]

    def _prefixed(self, spec: tuple) -> tuple:
        pattern, *rest = spec
        return (self.base_url + pattern.lstrip("/"), *rest)

    def make_tornado_app(self) -> HubApplication:
        from gilhub.apihandlers.base import APINotFoundHandler
        from gilhub.handlers.base import NotFoundHandler
        from gilhub.request_gate import HubApplication

        assert self.secret is not None
        static_prefix = self.hub_prefix + "static/"
        handlers = self.collect_handlers()
        handlers.append((static_prefix + "(.*)", StaticFileHandler, {"path": str(static_dir())}))
        # last, so that every part's API routes come first: unknown API paths answer JSON
        handlers.append((self.hub_prefix + "api/.*", APINotFoundHandler))
        settings = {
            "hub": self,
            "xsrf_cookies": True,
            "xsrf_cookie_kwargs": {
                "path": self.base_url,
                "samesite": "Lax",
                "secure": self.public_url.startswith("https:"),
            },
            "cookie_secret": self.secret,
            "template_path": str(templates_dir()),
            "static_path": str(static_dir()),
            "static_url_prefix": static_prefix,
            "default_handler_class": NotFoundHandler,
            "log_function": self._log_request,
            "websocket_ping_interval": 30,
            **self.tornado_settings,
        }
        return HubApplication(handlers, **settings)

    def _log_request(self, handler: Any) -> None:
        status = handler.get_status()
        if status < 300 and self.log_level > logging.DEBUG:
            return  # successes are logged only when debugging (no record built per request)
        log = access_log.info if status < 400 else access_log.warning
        if status < 300:
            log = access_log.debug
        request = handler.request
        log(
            "%d %s %s (%s) %.1fms",
            status,
            request.method,
            request.path,
            request.remote_ip,
            1000 * request.request_time(),
        )

    # -- running --------------------------------------------------------

    async def start_hub(self) -> None:
        """Open the database, build the services, adopt servers and listen; returns once serving."""
        from gilhub.proxy import UpstreamPool
        from gilhub.servers import ServerManager

        use_numeric_address_resolver()
        await self.open_database()
        assert self.db is not None
        self.supervise_embedded_database()
        self.auth_cache = AuthCache(ttl=self.auth_cache_ttl)
        async with self.db.begin() as conn:
            self.secret = await get_or_create_secret(conn, "cookie-secret")
        self.accounts = Accounts(parent=self, hub=self, db=self.db, auth_cache=self.auth_cache)
        self.authenticator = self.authenticator_class(parent=self, hub=self)
        await self.create_first_admin()
        await self.start_parts()
        self.upstream_pool = UpstreamPool()
        self.servers = ServerManager(hub=self, parent=self)
        self.accounts.servers = self.servers
        self.isolation = await self._check_isolation()
        await self.servers.restore()
        self._account_events = AccountEvents(self.accounts, libpq_url(self.db_url))
        self._account_events.start()
        self._housekeeping = asyncio.create_task(self._housekeep())
        ssl_options = self._ssl_context()
        sockets = self._bind()
        self.bound_port = sockets[0].getsockname()[1]
        if not self.public_url:
            self.public_url = self.listening_url(https=ssl_options is not None)
        self.http_server = HTTPServer(
            self.make_tornado_app(),
            xheaders=self.trust_xheaders,
            max_body_size=self.unauthenticated_body_limit,  # raised per request once known
            ssl_options=ssl_options,
        )
        self.http_server.add_sockets(sockets)
        try:
            await asyncio.to_thread(record_running_hub, self.data_dir)
        except OSError as error:  # commands then cannot say a hub runs here; nothing worse
            self.log.warning("Cannot record the running hub in %s: %s", self.data_dir, error)
        self.log.info("gilhub %s is listening on %s", __version__, self.public_url)

    async def start_parts(self) -> None:
        """Build each part's service once, as the hub attribute the part names."""
        for part in self.parts:
            hook = part.start_hook()
            if hook is None:
                continue
            service = await hook(self)
            if part.service_attribute:
                setattr(self, part.service_attribute, service)

    async def stop_parts(self) -> None:
        """Release the parts' services, the last started first."""
        for part in reversed(self.parts):
            hook = part.stop_hook()
            if hook is not None:
                await hook(self)
            if part.service_attribute:
                setattr(self, part.service_attribute, None)

    def _ssl_context(self) -> Any:
        """The TLS context when ssl_cert and ssl_key are set, else ``None``."""
        if not (self.ssl_cert or self.ssl_key):
            return None
        from gilhub.tls import CertificateError, server_context

        if not (self.ssl_cert and self.ssl_key):
            raise HubStartError("HTTPS needs both ssl_cert and ssl_key.")
        try:
            return server_context(self.ssl_cert, self.ssl_key)
        except CertificateError as error:
            raise HubStartError(str(error)) from error

    async def _check_isolation(self) -> Isolation:
        """Settle how users are kept apart; say so loudly when they are not."""
        spawner = self.spawner_class(hub=self, user=None, parent=self.servers)
        try:
            isolation = await spawner.isolation_status()
        except IsolationUnavailable as error:
            raise HubStartError(str(error)) from error
        if isolation.isolated:
            self.log.info("Isolation: %s", isolation.describe())
        else:
            self.log.warning(
                "%s. %s; any user's code can read the hub's files and reach other users'"
                " servers. Run the hub as root on Linux, or install bubblewrap (README: Security).",
                NOT_ISOLATED_WARNING.upper(),
                isolation.describe(),
            )
        return isolation

    def _bind(self) -> list:
        from tornado.netutil import bind_sockets

        try:
            return bind_sockets(self.port, self.ip or None)
        except OSError as error:
            raise HubStartError(
                f"cannot listen on {self.ip}:{self.port}: {error.strerror}"
            ) from error

    def listening_url(self, *, https: bool) -> str:
        """The hub's URL on the address it listens on (``public_url``'s default)."""
        host = self.ip if self.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if https else 'http'}://{host}:{self.bound_port}{self.base_url}"

    async def _housekeep(self) -> None:
        """Hourly: forget expired login sessions, failed logins out of the window and
        abandoned uploads (everyone's: only the hub's superuser sees them all)."""
        from gilhub.contents.query import discard_abandoned_uploads

        assert self.db is not None
        while True:
            try:
                async with self.db.begin() as conn:
                    await purge_expired_sessions(conn)
                    await self.login_throttle.purge(conn)
                    await discard_abandoned_uploads(conn, self.upload_chunk_max_age)
            except SQLAlchemyError as error:
                self.report_database_error(error, "Housekeeping failed (will retry)")
            await asyncio.sleep(min(HOUSEKEEPING_INTERVAL, self.upload_chunk_max_age / 2))

    def report_database_error(self, error: BaseException, what: str) -> None:
        """A lost database counts towards the outage (logged once); anything else is logged."""
        if is_database_unavailable(error):
            self.database_outage.failed(error)
        else:
            self.log.error("%s: %s", what, error, exc_info=error)

    async def stop_hub(self) -> None:
        """Stop serving; user servers are left running (see ServerManager.shutdown)."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None
        if self._account_events is not None:
            await self._account_events.stop()
            self._account_events = None
        if self.http_server is not None:
            self.http_server.stop()
            await self.http_server.close_all_connections()
            self.http_server = None
            await asyncio.to_thread(forget_running_hub, self.data_dir)
        try:
            if self.servers is not None:
                await self.servers.shutdown()
                self.servers = None
        finally:  # even when the database is gone: the embedded one must stop with the hub
            self.upstream_pool = None
            await self.stop_parts()
            if self.accounts is not None:
                self.accounts.close()
            await self.close_database()

    async def run(self) -> None:
        self._stop_requested = asyncio.Event()
        self._install_signal_handlers()
        try:
            await self.start_hub()
            await self._stop_requested.wait()
            self.log.info("Shutting down")
        finally:
            await self.stop_hub()

    def request_stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for name in ("SIGINT", "SIGTERM"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                loop.add_signal_handler(signum, self.request_stop)
            except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
                signal.signal(signum, lambda *_: loop.call_soon_threadsafe(self.request_stop))

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        if self.generate_config:
            self.write_default_config()
            return
        use_selector_loop_on_windows()
        try:
            asyncio.run(self.run())
        except (DatabaseUnavailable, HubStartError) as error:
            self.exit_with_error(str(error))
        except KeyboardInterrupt:
            pass

    def write_default_config(self) -> None:
        path = Path(self.config_file or CONFIG_FILE_NAME)
        if path.exists():
            self.exit_with_error(f"{path} exists; not overwriting it.")
        path.write_text(self.generate_config_file(), encoding="utf-8")
        print(f"Wrote {path}")


def main(argv: list[str] | None = None) -> None:
    from gilhub.singleuser import skip_iri_grammar

    skip_iri_grammar()  # before the parts import nbformat: a restarted hub listens sooner
    GilHub.launch_instance(argv)
