"""``/hub/api/…``: the JupyterHub-compatible subset of the REST API.

Shapes follow JupyterHub's so that tools written for it (jupyterhub-idle-culler
among them) work against gilhub: users with a ``servers`` dict whose default
server is named ``""``, ``pending`` as ``"spawn"``/``"stop"``, ISO 8601 UTC
times, optional pagination (``Accept: application/jupyterhub-pagination+json``).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import text
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError

from gilhub import __version__
from gilhub.accounts import (
    AccountError,
    NoSuchUser,
    ServerNotStopped,
    UserExists,
)
from gilhub.apihandlers.base import APIHandler
from gilhub.auth import scopes
from gilhub.auth.tokens import MAX_TOKEN_LIFETIME, TokenInfo, create_token, list_tokens
from gilhub.handlers.base import login_required, token_in
from gilhub.servers.models import ACTIVE_STATES, AddressRefused, ServerState
from gilhub.servers.query import record_server_activity
from gilhub.users import User, list_users, touch_user
from gilhub.web_errors import domain_errors

#: The JupyterHub REST API version whose subset gilhub implements.
JUPYTERHUB_API_VERSION = "5.2.0"
PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
STATE_FILTERS = {
    "ready": {ServerState.RUNNING},
    "active": ACTIVE_STATES,
    "inactive": {ServerState.STOPPED},
}


def isoformat(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


#: The accounts service's refusals as JSON errors of these statuses (400 for the others).
account_errors = domain_errors(
    AccountError, {NoSuchUser: 404, UserExists: 409, ServerNotStopped: 409}
)


def latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


class HubAPIHandler(APIHandler):
    token_scopes = None  # every method checks the scopes it needs

    def server_model(self, user: User) -> dict[str, Any]:
        status = self.hub.servers.status(user.name)
        return {
            "name": "",
            "ready": status.state == ServerState.RUNNING,
            "pending": status.state.pending,
            "stopped": status.state == ServerState.STOPPED,
            "url": status.url,
            "progress_url": f"{self.hub.hub_prefix}api/users/{user.name}/server/progress",
            "started": isoformat(status.started),
            "last_activity": isoformat(status.last_activity),
            "user_options": {},
            "state": {},
        }

    def user_model(self, user: User) -> dict[str, Any]:
        """JupyterHub's user model; ``servers`` only for requests with ``read:servers``."""
        server = self.server_model(user)
        status = self.hub.servers.status(user.name)
        model = {
            "kind": "user",
            "name": user.name,
            "admin": user.is_admin,
            "roles": ["admin"] if user.is_admin else ["user"],
            "groups": [],
            "server": server["url"] if server["ready"] else None,
            "pending": server["pending"],
            "created": isoformat(user.created),
            "last_activity": isoformat(latest(user.last_activity, status.last_activity)),
        }
        if self.has_scope("read:servers", user.name):
            model["servers"] = {} if server["stopped"] else {"": server}
        return model


class RootAPIHandler(HubAPIHandler):
    async def get(self) -> None:
        self.write_json({"version": JUPYTERHUB_API_VERSION, "gilhub_version": __version__})


class InfoAPIHandler(HubAPIHandler):
    @login_required
    async def get(self) -> None:
        self.require_scope("read:hub")
        authenticator = type(self.hub.authenticator)
        self.write_json(
            {
                "version": JUPYTERHUB_API_VERSION,
                "gilhub_version": __version__,
                "python": sys.version,
                "authenticator": {
                    "class": f"{authenticator.__module__}.{authenticator.__qualname__}",
                    "version": __version__,
                },
                "spawner": {"class": "gilhub", "version": __version__},
            }
        )


class HealthHandler(HubAPIHandler):
    """Unauthenticated liveness: the hub answers and its database does."""

    async def get(self) -> None:
        async with self.hub.db.connect() as conn:  # a lost database answers 503
            await conn.execute(text("SELECT 1"))
        self.write_json({"status": "ok"})


class SelfAPIHandler(HubAPIHandler):
    @login_required
    async def get(self) -> None:
        user = self.current_user
        assert user is not None
        self.write_json({**self.user_model(user), "scopes": scopes.flatten(self.grants)})


class UserListAPIHandler(HubAPIHandler):
    """The users ``list:users`` reaches: everyone for admins, themselves for other users."""

    @login_required
    async def get(self) -> None:
        if "list:users" not in self.grants:
            self.require_scope("list:users")  # 403, as JupyterHub words it
        async with self.hub.db.connect() as conn:
            users = [u for u in await list_users(conn) if self.has_scope("list:users", u.name)]
        state = self.get_argument("state", "")
        if state:
            if state not in STATE_FILTERS:
                raise HTTPError(400, f"state must be one of {', '.join(STATE_FILTERS)}.")
            wanted = STATE_FILTERS[state]
            users = [u for u in users if self.hub.servers.status(u.name).state in wanted]
        self.write_page([self.user_model(u) for u in users])

    def write_page(self, items: list[dict[str, Any]]) -> None:
        offset = self.int_argument("offset", 0)
        limit = self.int_argument("limit", 200)
        page = items[offset : offset + limit]
        if PAGINATION_MEDIA_TYPE not in self.request.headers.get("Accept", ""):
            self.write_json(page)
            return
        next_offset = offset + limit
        next_info = None
        if next_offset < len(items):
            query = {k: v[-1].decode() for k, v in self.request.query_arguments.items()}
            query.update(offset=str(next_offset), limit=str(limit))
            # from the hub's configured address, never from the request's Host header
            hub = urlsplit(self.hub.public_url)
            next_url = (hub.scheme, hub.netloc, self.request.path, urlencode(query), "")
            next_info = {"offset": next_offset, "limit": limit, "url": urlunsplit(next_url)}
        self.write_json(
            {
                "items": page,
                "_pagination": {
                    "offset": offset,
                    "limit": limit,
                    "total": len(items),
                    "next": next_info,
                },
            }
        )


class UserAPIHandler(HubAPIHandler):
    @login_required
    async def get(self, name: str) -> None:
        self.write_json(self.user_model(await self.permitted_user(name, "read:users")))

    @login_required
    async def post(self, name: str) -> None:
        """Create a user. Body (optional): ``{"admin": bool, "password": str}``; without a
        password a random one is set and returned once as ``password``."""
        self.require_scope("admin:users", name)
        body = self.json_object()
        with account_errors:
            user, new = await self.hub.accounts.create(
                name, body.get("password") or None, admin=bool(body.get("admin"))
            )
        model = self.user_model(user)
        if new is not None and new.generated:
            model["password"] = new.password
        self.write_json(model, status=201)

    @login_required
    async def patch(self, name: str) -> None:
        """Change ``admin``, ``password`` and/or ``name`` (a rename, as JupyterHub's)."""
        user = await self.permitted_user(name, "admin:users")
        body = self.json_object()
        accounts = self.hub.accounts
        new_name = body.get("name", user.name)
        if not isinstance(new_name, str) or not isinstance(body.get("password", ""), str):
            raise HTTPError(400, "name and password must be strings.")
        with account_errors:
            if "admin" in body:
                user = await accounts.set_admin(user, bool(body["admin"]), by=self.current_user)
            if "password" in body:
                await accounts.set_password(user, body["password"])
            user = await accounts.rename(user, new_name)
        self.write_json(self.user_model(await accounts.get(user.name)))

    @login_required
    async def delete(self, name: str) -> None:
        user = await self.permitted_user(name, "delete:users")
        with account_errors:
            await self.hub.accounts.remove(user, by=self.current_user)
        self.set_status(204)
        self.finish()


class ServerAPIHandler(HubAPIHandler):
    @login_required
    async def post(self, name: str) -> None:
        """Start the server: 201 when it is running, 202 while it starts."""
        user = await self.permitted_user(name, "start:servers")
        if self.hub.servers.status(user.name).state == ServerState.RUNNING:
            raise HTTPError(400, f"{user.name}'s server is already running.")
        await self.start_server(user)
        running = self.hub.servers.status(user.name).state == ServerState.RUNNING
        self.set_status(201 if running else 202)
        self.finish()

    @login_required
    async def delete(self, name: str) -> None:
        """Stop the server: 204 once stopped, 202 while it stops."""
        user = await self.permitted_user(name, "delete:servers")
        await self.hub.servers.stop(user)
        stopped = self.hub.servers.status(user.name).state == ServerState.STOPPED
        self.set_status(204 if stopped else 202)
        self.finish()


class ProgressAPIHandler(HubAPIHandler):
    """Spawn progress as ``text/event-stream`` (what the spawn-pending page listens to)."""

    @login_required
    async def get(self, name: str) -> None:
        user = await self.permitted_user(name, "read:servers")
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("X-Accel-Buffering", "no")
        try:
            async for event in self.hub.servers.progress(user.name):
                self.write(f"data: {json.dumps(event)}\n\n")
                await self.flush()
        except StreamClosedError:
            return
        self.finish()


class ServerAddressAPIHandler(HubAPIHandler):
    """``POST /hub/api/users/NAME/server/address`` ``{"host": "10.0.0.7", "port": 41234}``:
    a server started on another machine (a batch job on a cluster node) says where it
    listens. Only with that starting server's own token (``Authorization: token …``):
    no login, no API token, not even NAME's, may point the proxy anywhere."""

    async def post(self, name: str) -> None:
        token = token_in(self.request)
        if token is None:
            raise HTTPError(403, "The server's own token is required.")
        body = self.json_object()
        host, port = body.get("host"), body.get("port")
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            raise HTTPError(400, "host must be a host name or an IP address.")
        if type(port) is not int or not 0 < port < 65536:
            raise HTTPError(400, "port must be a whole number from 1 to 65535.")
        try:
            self.hub.servers.report_address(name, token, host, port)
        except AddressRefused as refused:
            raise HTTPError(403, str(refused)) from refused
        self.set_status(204)
        self.finish()


#: A host name or an IPv4/IPv6 address (no scheme, port, path or user part).
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?")


class ActivityAPIHandler(HubAPIHandler):
    """``POST /hub/api/users/NAME/activity``, as jupyterhub-singleuser and activity
    reporters send it: ``{"last_activity": ISO, "servers": {"": {"last_activity": ISO}}}``
    (either part may be left out). Times only move forward."""

    @login_required
    async def post(self, name: str) -> None:
        user = await self.permitted_user(name, "users:activity")
        body = self.json_object()
        user_activity = body.get("last_activity")
        servers = body.get("servers")
        if not user_activity and not servers:
            raise HTTPError(400, "The body needs last_activity, servers or both.")
        server_activity = parse_server_activity(servers) if servers else None
        when = parse_activity_time(user_activity) if user_activity else None
        async with self.hub.db.begin() as conn:
            if when is not None:
                await touch_user(conn, user.id, when)
            if server_activity is not None:
                await touch_user(conn, user.id, server_activity)
                await record_server_activity(conn, user.id, server_activity)
        if server_activity is not None:
            self.hub.servers.record_activity(user.name, server_activity)
        self.set_status(204)
        self.finish()


#: Longest timestamp accepted (ISO 8601 with microseconds and an offset is 32 characters).
_MAX_TIMESTAMP_LENGTH = 40
_SERVERS_SHAPE = 'servers must look like {"": {"last_activity": "2026-01-01T00:00:00Z"}}.'


def parse_server_activity(servers: Any) -> datetime:
    """The default server's reported activity (gilhub runs one server per user: ``""``)."""
    if not isinstance(servers, dict) or not all(isinstance(v, dict) for v in servers.values()):
        raise HTTPError(400, _SERVERS_SHAPE)
    unknown = [server_name for server_name in servers if server_name != ""]
    if unknown:
        raise HTTPError(400, f"No such server: {str(unknown[0])[:100]!r} (only the default, '').")
    if "last_activity" not in servers.get("", {}):
        raise HTTPError(400, _SERVERS_SHAPE)
    return parse_activity_time(servers[""]["last_activity"])


def parse_activity_time(value: Any) -> datetime:
    """An ISO 8601 time (UTC when it has no offset); 400 if malformed or over an hour ahead."""
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_LENGTH:
        raise HTTPError(400, "last_activity must be an ISO 8601 time, e.g. 2026-01-01T00:00:00Z.")
    try:
        # Python 3.10's fromisoformat does not read a "Z" suffix
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError as error:
        raise HTTPError(400, f"Not an ISO 8601 time: {value!r}.") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment - datetime.now(timezone.utc) > timedelta(minutes=59):
        raise HTTPError(400, "Refusing activity from more than an hour in the future.")
    return moment


class TokenListAPIHandler(HubAPIHandler):
    @login_required
    async def get(self, name: str) -> None:
        user = await self.permitted_user(name, "read:tokens")
        async with self.hub.db.connect() as conn:
            tokens = await list_tokens(conn, user.id)
        self.write_json({"api_tokens": [token_model(token) for token in tokens]})

    @login_required
    async def post(self, name: str) -> None:
        """Body (optional): ``{"note": str, "expires_in": seconds, "scopes": [...]}`` or
        ``"roles": [...]`` instead of scopes (neither: ``inherit``). The token is in the
        answer once and never again."""
        user = await self.permitted_user(name, "tokens")
        body = self.json_object()
        note = body.get("note") or "Requested via API"
        expires_in = body.get("expires_in")
        if not isinstance(note, str) or len(note) > 1000:
            raise HTTPError(400, "note must be a string of at most 1000 characters.")
        longest = int(MAX_TOKEN_LIFETIME.total_seconds())
        if expires_in is not None and (
            type(expires_in) is not int or not 0 < expires_in <= longest
        ):
            raise HTTPError(400, f"expires_in must be a whole number of seconds, 1 to {longest}.")
        try:
            token_scopes = scopes.scopes_for_new_token(
                user,
                self.hub.admin_access,
                scopes=string_list(body, "scopes"),
                roles=string_list(body, "roles"),
            )
        except scopes.ScopeError as error:
            raise HTTPError(400, str(error)) from error
        async with self.hub.db.begin() as conn:
            new = await create_token(
                conn,
                user.id,
                note,
                timedelta(seconds=expires_in) if expires_in else None,
                token_scopes,
            )
        self.write_json({"token": new.token, **token_model(new.info)}, status=201)


class TokenAPIHandler(HubAPIHandler):
    @login_required
    async def get(self, name: str, token_id: str) -> None:
        user = await self.permitted_user(name, "read:tokens")
        async with self.hub.db.connect() as conn:
            tokens = await list_tokens(conn, user.id)
        for token in tokens:
            if str(token.id) == token_id:
                self.write_json(token_model(token))
                return
        raise HTTPError(404, "No such token.")

    @login_required
    async def delete(self, name: str, token_id: str) -> None:
        user = await self.permitted_user(name, "tokens")
        if not token_id.isdigit() or not await self.hub.accounts.revoke_token(user, int(token_id)):
            raise HTTPError(404, "No such token.")
        self.set_status(204)
        self.finish()


def string_list(body: dict[str, Any], key: str) -> list[str] | None:
    """``body[key]`` as a bounded list of strings, ``None`` if absent (400 otherwise)."""
    value = body.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(isinstance(item, str) and len(item) <= 200 for item in value)
    ):
        raise HTTPError(400, f"{key} must be a list of at most 100 strings.")
    return value


def token_model(token: TokenInfo) -> dict[str, Any]:
    return {
        "kind": "api_token",
        "id": str(token.id),
        "user": token.user,
        "prefix": token.prefix,
        "note": token.note,
        "scopes": token.scopes,
        "created": isoformat(token.created),
        "last_activity": isoformat(token.last_used),
        "expires_at": isoformat(token.expires),
    }
