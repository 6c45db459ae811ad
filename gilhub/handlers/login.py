"""Logging in and out, and changing one's own password.

The login form asks the hub's authenticator who this is, with failed attempts
throttled around it (whatever the authenticator), and starts the session
through the accounts service.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from gilhub.auth.authenticator import AuthenticatorUnavailable
from gilhub.auth.redirects import safe_next
from gilhub.handlers.base import BaseHandler, login_required

LOGIN_FAILED = "Invalid username or password."


class LoginHandler(BaseHandler):
    allowed_before_password_change = True

    def next_url(self) -> str:
        return safe_next(self.get_argument("next", None), self.hub.hub_prefix + "home")

    def render_login(self, username: str = "", error: str = "") -> None:
        self.render_template(
            "login.html",
            username=username,
            error=error,
            next_query=urlencode({"next": self.next_url()}),
        )

    async def get(self) -> None:
        if self.current_user is not None:
            self.redirect(self.next_url())
            return
        self.render_login()

    async def post(self) -> None:
        authenticator = self.hub.authenticator
        name = authenticator.normalize_username(self.get_body_argument("username", ""))
        data = {"username": name, "password": self.get_body_argument("password", "")}
        echoed = name[:64]
        throttle = self.hub.login_throttle
        valid_name = name if authenticator.validate_username(name) else None
        keys = throttle.keys(valid_name, self.request.remote_ip or "")
        async with self.hub.db.begin() as conn:
            admission = await throttle.admit(conn, keys)
        if admission.wait:
            self.set_status(429)
            self.set_header("Retry-After", str(admission.wait))
            wait = admission.wait
            self.render_login(echoed, f"Too many failed logins. Try again in {wait} seconds.")
            return
        try:
            username = await authenticator.get_authenticated_user(self, data)
        except AuthenticatorUnavailable as error:
            async with self.hub.db.begin() as conn:
                await throttle.undecided(conn, keys, admission)
            self.set_status(503)
            self.render_login(echoed, str(error))
            return
        async with self.hub.db.begin() as conn:
            if username is None:
                await throttle.failed(conn, keys)
            else:
                await throttle.succeeded(conn, keys)
        if username is None:
            self.set_status(403)
            self.render_login(echoed, LOGIN_FAILED)
            return
        session_id = await self.hub.accounts.log_in(
            username,
            timedelta(days=self.hub.session_max_age_days),
            admin=authenticator.is_admin(username),
        )
        self.set_session_cookie(session_id)
        self.redirect(self.next_url())


class LogoutHandler(BaseHandler):
    """POST (with XSRF) ends the session; GET shows a button, so links cannot log people out."""

    allowed_before_password_change = True

    async def get(self) -> None:
        if self.current_user is None:
            self.redirect(self.hub.hub_prefix + "login")
            return
        self.render_template("logout.html")

    async def post(self) -> None:
        if self.current_user is not None:
            await self.hub.accounts.log_out(self.current_user, self.session_id())
        self.clear_session_cookie()
        self.redirect(self.hub.hub_prefix + "login")


class ChangePasswordHandler(BaseHandler):
    """One's own local password; accounts a directory vouches for have none to change."""

    allowed_before_password_change = True

    async def render_page(self, *, error: str = "") -> None:
        user = self.current_user
        assert user is not None
        await self.render_template(
            "change_password.html",
            error=error,
            done=self.take_shown().get("done", False),
            required=user.must_change_password,
            local=await self.hub.accounts.has_password(user.name),
        )

    @login_required
    async def get(self) -> None:
        await self.render_page()

    @login_required
    async def post(self) -> None:
        user = self.current_user
        assert user is not None
        accounts = self.hub.accounts
        current = self.get_body_argument("current_password", "")
        new = self.get_body_argument("new_password", "")
        error = accounts.password_problem(new, self.get_body_argument("new_password_repeat", ""))
        if not await accounts.verify_password(user.name, current):
            error = "The current password is wrong."
        if error:
            self.set_status(400)
            await self.render_page(error=error)
            return
        await accounts.set_password(user, new, keep_session=self.session_id())
        self.redirect_after_post(self.request.uri or self.request.path, done=True)
