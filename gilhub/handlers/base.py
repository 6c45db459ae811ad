"""What every hub page and API handler shares: who is asking, pages, errors.

A request is authenticated either by the signed session cookie
``gilhub-session`` (browsers) or by ``Authorization: token <t>`` (scripts).
A request that presents a token is authenticated by that token alone, never by
a cookie sent alongside it; it is therefore exempt from the XSRF check, which
only protects cookie-authenticated requests (a foreign page cannot make a
browser add an ``Authorization`` header).

What a request may do is given by scopes (:mod:`gilhub.auth.scopes`): a browser
session has all its owner's, a token the part of them it was created with.
The XSRF token of a logged-in browser is derived from its login session, as in
JupyterHub 4.1+, so a token taken from one session (or planted as a cookie by
someone who can write cookies for the hub's site) is refused in any other.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import unquote_plus, urlencode, urlsplit

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection
from tornado.httputil import HTTPServerRequest
from tornado.log import app_log, gen_log
from tornado.web import Finish, HTTPError, RequestHandler, decode_signed_value

from gilhub import __version__
from gilhub.auth import scopes
from gilhub.auth.scopes import Grants, Identity
from gilhub.auth.sessions import session_xsrf_token, user_for_session
from gilhub.auth.tokens import identity_for_token
from gilhub.db.outage import RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE, is_database_unavailable
from gilhub.handlers import flash
from gilhub.servers.models import ServerState, SpawnLimitReached
from gilhub.users import User, get_user_by_name

if TYPE_CHECKING:
    from gilhub.app import GilHub

SESSION_COOKIE = "gilhub-session"
XSRF_COOKIE = "_xsrf"
#: The largest whole number a request may carry (PostgreSQL ``integer``).
MAX_WHOLE_NUMBER = 2**31 - 1
#: How long browsers keep to HTTPS for the hub's host once they have seen it (a year).
HSTS_MAX_AGE = 365 * 24 * 3600
#: Query parameters whose names contain one of these are masked in logs.
SECRET_QUERY_WORDS = ("token", "auth", "key", "code", "state", "xsrf", "password", "secret")

HandlerMethod = Callable[..., Awaitable[Any] | Any]


class BaseHandler(RequestHandler):
    """Base of every handler under ``/hub/`` (and of the proxy's)."""

    #: API handlers answer errors in JSON and never redirect to the login page.
    is_api = False
    #: "cookie", "token" or None once :meth:`prepare` has run.
    auth_method: str | None = None
    #: Served to someone who logged in with a one-time password and has not replaced it.
    allowed_before_password_change = False
    #: The largest body (bytes) an authenticated request may send here (``None``: the hub's
    #: ``max_body_size``); forms and API calls are small. Unauthenticated requests get the
    #: hub's ``unauthenticated_body_limit`` whatever the handler (see gilhub.request_gate).
    body_limit: int | None = 1024 * 1024
    #: Who is asking, once :meth:`prepare` has run.
    identity: Identity | None = None
    #: The scopes a token needs to reach this handler at all: the first for GET, HEAD and
    #: OPTIONS, the second for other methods. ``"inherit"``: only tokens with all their
    #: owner's rights (pages). ``None``: the handler checks scopes per method itself.
    token_scopes: tuple[str, str] | None = ("inherit", "inherit")

    @property
    def hub(self) -> GilHub:
        return self.settings["hub"]

    def set_default_headers(self) -> None:
        # hub pages may be framed only by the hub itself, and never cached (some show secrets)
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")
        if self.request.protocol == "https":
            self.set_header("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE}")

    @property
    def current_user(self) -> User | None:  # type: ignore[override]
        return super().current_user

    @current_user.setter
    def current_user(self, user: User | None) -> None:
        self._current_user = user

    def get_current_user(self) -> User | None:
        return None  # resolved asynchronously in prepare()

    # -- authentication -------------------------------------------------

    def token_from_header(self) -> str | None:
        return token_in(self.request)

    @property
    def xsrf_token(self) -> bytes:
        """A logged-in browser's token is bound to its session; before login, tornado's."""
        session_id = self.session_id()
        if session_id is None:
            return super().xsrf_token
        token = session_xsrf_token(self.settings["cookie_secret"], session_id)
        if self.get_cookie(XSRF_COOKIE) != token:
            self.set_xsrf_cookie(token)
        return token.encode("ascii")

    def set_xsrf_cookie(self, token: str) -> None:
        self.set_cookie(XSRF_COOKIE, token, **self.settings.get("xsrf_cookie_kwargs", {}))

    def check_xsrf_cookie(self) -> None:
        if self.token_from_header() is not None:
            return
        session_id = self.session_id()
        if session_id is None:
            super().check_xsrf_cookie()  # the login form: tornado's double-submit cookie
            return
        submitted = (
            self.get_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
            or ""
        )
        expected = session_xsrf_token(self.settings["cookie_secret"], session_id)
        if not hmac.compare_digest(submitted.encode("utf-8", "replace"), expected.encode()):
            raise HTTPError(403, "XSRF token missing or not issued to this login session.")

    async def prepare(self) -> None:
        self.identity = await self.authenticate()
        self.current_user = self.identity.user if self.identity else None
        self.check_token_reach()
        user = self.current_user
        if (
            user is not None
            and user.must_change_password
            and self.auth_method == "cookie"
            and not self.allowed_before_password_change
        ):
            self.require_password_change()

    def require_password_change(self) -> None:
        """Before anything else, a one-time password must be replaced (page or 403)."""
        change = self.hub.hub_prefix + "change-password"
        if self.request.method in ("GET", "HEAD") and not self.is_api:
            self.redirect(f"{change}?{urlencode({'next': self.request.uri or ''})}")
            raise Finish()
        raise HTTPError(403, f"Choose a new password first ({change}).")

    async def authenticate(self) -> Identity | None:
        identity, self.auth_method = await authenticate_request(self.hub, self.request)
        return identity

    # -- authorization --------------------------------------------------

    @functools.cached_property
    def owner_grants(self) -> Grants:
        """All the current user's scopes (nothing when nobody is logged in)."""
        if self.identity is None:
            return {}
        return scopes.owner_scopes(self.identity.user, self.hub.admin_access)

    @functools.cached_property
    def grants(self) -> Grants:
        """The scopes of this request: the owner's, narrowed to its token's if it has one."""
        if self.identity is None:
            return {}
        return scopes.request_grants(self.identity, self.hub.admin_access)

    def has_scope(self, scope: str, user_name: str | None = None) -> bool:
        if scope == "inherit":
            return self.grants == self.owner_grants
        return scopes.allows(self.grants, scope, user_name)

    def require_scope(self, scope: str, user_name: str | None = None) -> None:
        """403 unless this request holds ``scope`` (for ``user_name``), as JupyterHub says it."""
        if self.current_user is None:
            raise HTTPError(403, "Login required.")
        if not self.has_scope(scope, user_name):
            raise HTTPError(
                403, f"Action is not authorized with current scopes; requires any of [{scope}]"
            )

    def check_token_reach(self) -> None:
        if self.auth_method != "token" or self.token_scopes is None:
            return
        read_only = self.request.method in ("GET", "HEAD", "OPTIONS")
        self.require_scope(self.token_scopes[0 if read_only else 1])

    def session_id(self) -> str | None:
        return session_id_in(self.hub, self.request)

    def set_session_cookie(self, session_id: str) -> None:
        """Log the browser in, with an XSRF token of the new session from this answer on."""
        self.set_xsrf_cookie(session_xsrf_token(self.settings["cookie_secret"], session_id))
        self.set_signed_cookie(
            SESSION_COOKIE,
            session_id,
            expires_days=self.hub.session_max_age_days,
            path=self.hub.base_url,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )

    def clear_session_cookie(self) -> None:
        self.clear_cookie(SESSION_COOKIE, path=self.hub.base_url)
        self.clear_cookie(XSRF_COOKIE, path=self.hub.base_url)
        self.clear_cookie(flash.COOKIE, path=self.hub.hub_prefix)

    async def permitted_user(self, name: str, scope: str) -> User:
        """The user ``name`` if this request holds ``scope`` for them.

        403 without the scope, then 404 when there is no such user.
        """
        self.require_scope(scope, name)
        me = self.current_user
        if me is not None and name == me.name:
            return me
        async with self.hub.db.connect() as conn:
            user = await get_user_by_name(conn, name)
        if user is None:
            raise HTTPError(404, "No such user.")
        return user

    async def start_server(self, user: User) -> None:
        """Start ``user``'s server; a spawn limit is HTTP 429 with ``Retry-After``."""
        try:
            await self.hub.servers.start(user)
        except SpawnLimitReached as limit:
            error = HTTPError(429, str(limit))
            error.headers = {"Retry-After": str(limit.retry_after)}  # type: ignore[attr-defined]
            raise error from limit

    @overload
    def int_argument(self, name: str) -> int | None: ...
    @overload
    def int_argument(self, name: str, default: int) -> int: ...
    def int_argument(self, name: str, default: int | None = None) -> int | None:
        """The query or form argument ``name`` as a whole number (``default`` when absent)."""
        value = whole_number(self.get_argument(name, None), name)
        return default if value is None else value

    def login_url_for(self, next_url: str) -> str:
        return f"{self.hub.hub_prefix}login?{urlencode({'next': next_url})}"

    def landing_path_of(self, user: User) -> str:
        """Where ``user``'s server opens (under /user/NAME/): their chosen interface, else
        the hub's ``landing_path``."""
        return user.interface or self.hub.landing_path

    # -- POST/redirect/GET ---------------------------------------------------

    def redirect(self, url: str, permanent: bool = False, status: int | None = None) -> None:
        """After a POST, ``303 See Other``: the browser GETs the next page, so its address
        bar never keeps a POST's URL and a reload does not post again."""
        if status is None and not permanent and self.request.method == "POST":
            status = 303
        super().redirect(url, permanent, status)

    def redirect_after_post(self, url: str, **shown: Any) -> None:
        """Redirect (303) to ``url``, whose page gets ``shown`` (JSON values: a notice, a
        password shown only once ...) from :meth:`take_shown`; see :mod:`gilhub.handlers.flash`."""
        user = self.current_user
        if shown and user is not None:
            message = flash.Shown(user.id, urlsplit(url).path, shown)
            sealed = flash.seal(self.settings["cookie_secret"], message)
            if sealed is None:
                app_log.warning("what %s shows after its POST is too long for a cookie", url)
            else:
                self.set_cookie(
                    flash.COOKIE,
                    sealed,
                    path=self.hub.hub_prefix,
                    max_age=flash.MAX_AGE,
                    httponly=True,
                    samesite="Lax",
                    secure=self.request.protocol == "https",
                )
        self.redirect(url, status=303)

    def take_shown(self) -> dict[str, Any]:
        """What the POST that redirected here has to show (once), else ``{}``.

        The cookie is cleared when taken, and when it is of no use to anyone (forged,
        expired, another user's); one meant for another page waits for that page.
        """
        sealed = self.get_cookie(flash.COOKIE)
        user = self.current_user
        if not sealed or user is None:
            return {}
        message = flash.unseal(self.settings["cookie_secret"], sealed)
        mine = message is not None and message.user_id == user.id
        if mine and message.path != self.request.path:
            return {}
        self.clear_cookie(flash.COOKIE, path=self.hub.hub_prefix)
        return message.context if mine else {}

    # -- pages ----------------------------------------------------------

    def template_namespace(self) -> dict[str, Any]:
        return {
            "current_user": self.current_user,
            # tornado builds this <input> itself, with the token escaped
            "xsrf_form_html": lambda: Markup(self.xsrf_form_html()),  # noqa: S704
            "xsrf_token": self.xsrf_token.decode("ascii"),
            "hub_prefix": self.hub.hub_prefix,
            "base_url": self.hub.base_url,
            "static_url": self.static_url,
            "nav_links": self.hub.nav_links,
            "landing_path_of": self.landing_path_of,
            "admin_access": self.hub.admin_access,
            "version": __version__,
            "ServerState": ServerState,
        }

    def render_template(self, name: str, **context: Any) -> Awaitable[None]:
        """Render ``templates/name`` (autoescaped) and finish the response with it."""
        html = self.hub.templates.get_template(name).render(**self.template_namespace(), **context)
        return self.finish(html)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.describe_error(status_code, kwargs.get("exc_info"))
        self.render_template(
            "error.html",
            status_code=status_code,
            reason=self.error_reason(status_code),
            message=message,
        )

    def write_json_error(self, status_code: int, exc_info: Any) -> None:
        """The error as ``{"status": code, "message": "..."}`` (API calls, proxied requests),
        with the ``details`` an :class:`~gilhub.apihandlers.base.APIError` carries."""
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        status_code, message = self.describe_error(status_code, exc_info)
        message = message or self.error_reason(status_code)
        details = getattr(exc_info[1], "details", {}) if exc_info else {}
        self.finish(json.dumps({**details, "status": status_code, "message": message}, default=str))

    def describe_error(self, status_code: int, exc_info: Any) -> tuple[int, str]:
        """The status and message to show: an HTTPError's text, 503 (with ``Retry-After``)
        when the database is unreachable, never a traceback."""
        exception = exc_info[1] if exc_info else None
        # send_error clears headers set before the raise; errors may carry theirs (Retry-After)
        for name, value in (getattr(exception, "headers", None) or {}).items():
            self.set_header(name, value)
        if is_database_unavailable(exception):
            self.set_status(503)
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            return 503, UNAVAILABLE_MESSAGE
        return status_code, self.error_message(exc_info)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """As tornado's, but the request is shown with secrets in its query masked, and a
        lost database is logged once per outage (by the hub), not once per request."""
        if is_database_unavailable(value):
            self.hub.database_outage.failed(value)
            return
        request = self.request
        summary = f"{request.method} {scrub_uri(request.uri or '')} ({request.remote_ip})"
        if isinstance(value, HTTPError):
            if value.log_message:
                message = self.error_message((typ, value, tb))
                gen_log.warning("%d %s: %s", value.status_code, summary, message)
            return
        app_log.error("Uncaught exception %s", summary, exc_info=(typ, value, tb))

    def error_reason(self, status_code: int) -> str:
        try:
            return HTTPStatus(status_code).phrase
        except ValueError:
            return self._reason

    def error_message(self, exc_info: Any) -> str:
        """The message meant for people: an HTTPError's text, never a traceback."""
        exception = exc_info[1] if exc_info else None
        if isinstance(exception, HTTPError) and exception.log_message:
            try:  # as tornado formats it (APIError escapes '%' in its message for this)
                return exception.log_message % exception.args
            except (TypeError, ValueError):  # a bare '%' in a message raised without args
                return exception.log_message
        return ""


def scrub_uri(uri: str) -> str:
    """``uri`` with the values of query parameters that may hold secrets (``token=``,
    ``_xsrf=``, ``password=``…) replaced by ``[secret]``, for logs."""
    path, question_mark, query = uri.partition("?")
    if not question_mark:
        return uri
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        secret = any(word in unquote_plus(name).lower() for word in SECRET_QUERY_WORDS)
        parts.append(f"{name}{equals}[secret]" if secret and equals else part)
    return f"{path}?{'&'.join(parts)}"


def token_in(request: HTTPServerRequest) -> str | None:
    """The API token of ``Authorization: token …`` (or ``Bearer``), if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def session_id_in(hub: GilHub, request: HTTPServerRequest) -> str | None:
    """The login session named by the request's signed session cookie, if valid."""
    morsel = request.cookies.get(SESSION_COOKIE)
    if morsel is None:
        return None
    value = decode_signed_value(
        hub.secret, SESSION_COOKIE, morsel.value, max_age_days=hub.session_max_age_days
    )
    return value.decode("ascii", "replace") if value else None


async def authenticate_request(
    hub: GilHub, request: HTTPServerRequest
) -> tuple[Identity | None, str | None]:
    """Who sent ``request`` and how: ``(identity, "token" | "cookie")``, or ``(None, None)``.

    A request that presents a token is judged by that token alone. Usable before any
    handler exists (the body limits are decided with it, see :mod:`gilhub.request_gate`).
    """
    token = token_in(request)
    if token is not None:
        identity = await _cached_lookup(hub, "token", token, identity_for_token)
        return identity, "token" if identity else None
    session_id = session_id_in(hub, request)
    if session_id is None:
        return None, None
    identity = await _cached_lookup(hub, "cookie", session_id, _identity_for_session)
    return identity, "cookie" if identity else None


async def _cached_lookup(
    hub: GilHub,
    kind: str,
    credential: str,
    lookup: Callable[[AsyncConnection, str], Awaitable[Identity | None]],
) -> Identity | None:
    async def fetch() -> Identity | None:
        async with hub.db.begin() as conn:
            return await lookup(conn, credential)

    return await hub.auth_cache.get_or_fetch(hub.auth_cache.key(kind, credential), fetch)


async def _identity_for_session(conn: AsyncConnection, session_id: str) -> Identity | None:
    user = await user_for_session(conn, session_id)
    return Identity(user) if user else None


def whole_number(value: Any, name: str) -> int | None:
    """A request's argument or JSON value as an int from 0 to :data:`MAX_WHOLE_NUMBER`.

    ``None`` when absent (``None`` or empty); 400 naming ``name`` for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if type(value) is int and 0 <= value <= MAX_WHOLE_NUMBER:
        return value
    raise HTTPError(400, f"{name} must be a whole number from 0 to {MAX_WHOLE_NUMBER}")


class NotFoundHandler(BaseHandler):
    """Everything no other handler claims."""

    async def prepare(self) -> None:
        await super().prepare()
        raise HTTPError(404, "There is nothing at this address.")


def login_required(method: HandlerMethod) -> HandlerMethod:
    """Let only logged-in users through: browsers are sent to the login page
    (``GET``/``HEAD``), API calls and other methods get 403."""

    @functools.wraps(method)
    async def wrapper(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        if self.current_user is None:
            if self.request.method in ("GET", "HEAD") and not self.is_api:
                self.redirect(self.login_url_for(self.request.uri or self.hub.hub_prefix))
                return None
            raise HTTPError(403, "Login required.")
        result = method(self, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return wrapper


def admin_required(method: HandlerMethod) -> HandlerMethod:
    """Like :func:`login_required`, and the user must be an admin (else 403)."""

    @functools.wraps(method)
    async def check_admin(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        if not self.current_user.is_admin:  # type: ignore[union-attr]
            app_log.warning("non-admin %s refused at %s", self.current_user.name, self.request.path)  # type: ignore[union-attr]
            raise HTTPError(403, "This page is for administrators.")
        result = method(self, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return login_required(check_admin)
