"""The admin page: people (add, remove, reset passwords, make admin) and every server."""

from __future__ import annotations

from typing import Any

from tornado.web import HTTPError

from gilhub.auth.passwords import generate_password
from gilhub.auth.sessions import delete_user_sessions
from gilhub.handlers.base import BaseHandler, admin_required
from gilhub.handlers.login import password_problem
from gilhub.users import (
    USERNAME_RULE,
    InvalidUsername,
    UserExists,
    create_user,
    get_user_by_name,
    list_users,
    set_admin,
    set_password,
)


class AdminPageHandler(BaseHandler):
    async def render_admin(self, *, notice: str = "", error: str = "", secret: str = "") -> None:
        async with self.hub.db.connect() as conn:
            users = await list_users(conn)
        rows = [(user, self.hub.servers.status(user.name)) for user in users]
        if error:
            self.set_status(400)
        self.render_template(
            "admin.html",
            rows=rows,
            notice=notice,
            error=error,
            secret=secret,
            isolation=self.hub.isolation,
        )


class AdminHandler(AdminPageHandler):
    @admin_required
    async def get(self) -> None:
        await self.render_admin()


class AdminUsersHandler(AdminPageHandler):
    """Adding a user; without a password given, one is generated and shown once."""

    @admin_required
    async def post(self) -> None:
        name = self.get_body_argument("username", "").strip()
        password = self.get_body_argument("password", "")
        admin = self.get_body_argument("admin", "") == "on"
        generated = not password
        password = password or generate_password()
        problem = password_problem(password)
        if problem:
            await self.render_admin(error=problem)
            return
        try:
            async with self.hub.db.begin() as conn:
                await create_user(conn, name, password=password, admin=admin)
        except InvalidUsername:
            await self.render_admin(error=f"Invalid user name: {USERNAME_RULE}.")
            return
        except UserExists:
            await self.render_admin(error=f"A user named {name} already exists.")
            return
        notice = f"Added {name}."
        if generated:
            await self.render_admin(
                notice=notice + " Their password (shown only now):", secret=password
            )
        else:
            await self.render_admin(notice=notice)


class AdminUserActionHandler(AdminPageHandler):
    """``/hub/admin/users/NAME/(remove|password|admin)``."""

    @admin_required
    async def post(self, name: str, action: str) -> None:
        async with self.hub.db.connect() as conn:
            user = await get_user_by_name(conn, name)
        if user is None:
            raise HTTPError(404, "No such user.")
        await getattr(self, f"do_{action}")(user)

    async def do_remove(self, user: Any) -> None:
        if user.id == self.current_user.id:  # type: ignore[union-attr]
            await self.render_admin(error="You cannot remove your own account.")
            return
        await self.hub.remove_user(user)
        await self.render_admin(notice=f"Removed {user.name}.")

    async def do_password(self, user: Any) -> None:
        password = generate_password()
        async with self.hub.db.begin() as conn:
            await set_password(conn, user.name, password)
            await delete_user_sessions(conn, user.id)
        self.hub.auth_cache.forget_user(user.id)
        await self.render_admin(
            notice=f"New password for {user.name} (shown only now):", secret=password
        )

    async def do_admin(self, user: Any) -> None:
        make_admin = self.get_body_argument("value", "") == "1"
        if user.id == self.current_user.id and not make_admin:  # type: ignore[union-attr]
            await self.render_admin(error="You cannot revoke your own admin rights.")
            return
        async with self.hub.db.begin() as conn:
            await set_admin(conn, user.name, make_admin)
        self.hub.auth_cache.forget_user(user.id)
        verb = "is now an admin" if make_admin else "is no longer an admin"
        await self.render_admin(notice=f"{user.name} {verb}.")
