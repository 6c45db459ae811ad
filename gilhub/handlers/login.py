"""Logging in and out, and changing one's own password."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from gilhub.auth.passwords import verify_password
from gilhub.auth.redirects import safe_next
from gilhub.auth.sessions import create_session, delete_session, delete_user_sessions
from gilhub.handlers.base import BaseHandler, login_required
from gilhub.users import (
    get_password_hash,
    get_user_by_name,
    is_valid_username,
    set_password,
    touch_user,
)

LOGIN_FAILED = "Invalid username or password."
MIN_PASSWORD_LENGTH = 8


class LoginHandler(BaseHandler):
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
        name = self.get_body_argument("username", "").strip().lower()
        password = self.get_body_argument("password", "")
        valid_name = is_valid_username(name)
        throttle = self.hub.login_throttle
        limits = throttle.limits(name if valid_name else None, self.request.remote_ip or "")
        async with self.hub.db.begin() as conn:
            wait = await throttle.retry_after(conn, limits)
            if not wait:
                attempt = await throttle.count_attempt(conn, limits)
                password_hash = await get_password_hash(conn, name)
        echoed = name[:64]
        if wait:
            self.set_status(429)
            self.set_header("Retry-After", str(wait))
            self.render_login(echoed, f"Too many failed logins. Try again in {wait} seconds.")
            return
        if not await verify_password(password_hash, password):
            self.set_status(403)
            self.render_login(echoed, LOGIN_FAILED)
            return
        async with self.hub.db.begin() as conn:
            await throttle.forgive(conn, limits, attempt, name)
            user = await get_user_by_name(conn, name)
            assert user is not None
            await touch_user(conn, user.id)
            session_id = await create_session(
                conn, user.id, timedelta(days=self.hub.session_max_age_days)
            )
        self.set_session_cookie(session_id)
        self.redirect(self.next_url())


class LogoutHandler(BaseHandler):
    """POST (with XSRF) ends the session; GET shows a button, so links cannot log people out."""

    async def get(self) -> None:
        if self.current_user is None:
            self.redirect(self.hub.hub_prefix + "login")
            return
        self.render_template("logout.html")

    async def post(self) -> None:
        session_id = self.session_id()
        if session_id is not None:
            async with self.hub.db.begin() as conn:
                await delete_session(conn, session_id)
        if self.current_user is not None:
            self.hub.auth_cache.forget_user(self.current_user.id)
        self.clear_session_cookie()
        self.redirect(self.hub.hub_prefix + "login")


class ChangePasswordHandler(BaseHandler):
    @login_required
    async def get(self) -> None:
        self.render_template("change_password.html", error="", done=False)

    @login_required
    async def post(self) -> None:
        user = self.current_user
        assert user is not None
        current = self.get_body_argument("current_password", "")
        new = self.get_body_argument("new_password", "")
        repeated = self.get_body_argument("new_password_repeat", "")
        async with self.hub.db.begin() as conn:
            password_hash = await get_password_hash(conn, user.name)
        error = password_problem(new, repeated)
        if not await verify_password(password_hash, current):
            error = "The current password is wrong."
        if error:
            self.set_status(400)
            self.render_template("change_password.html", error=error, done=False)
            return
        async with self.hub.db.begin() as conn:
            await set_password(conn, user.name, new)
            await delete_user_sessions(conn, user.id, keep=self.session_id())
        self.hub.auth_cache.forget_user(user.id)
        self.render_template("change_password.html", error="", done=True)


def password_problem(password: str, repeated: str | None = None) -> str:
    """What is wrong with a new password, or ``""``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 1024:
        return "That password is too long."
    if repeated is not None and password != repeated:
        return "The two new passwords differ."
    return ""
