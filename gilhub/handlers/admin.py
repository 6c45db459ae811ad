"""The admin page: people (add, remove, reset passwords, make admin) and every server.

Every change goes through the accounts service (:class:`gilhub.accounts.Accounts`);
its refusals are shown on the page.
"""

from __future__ import annotations

from tornado.web import HTTPError

from gilhub.accounts import AccountError, NoSuchUser
from gilhub.handlers.base import BaseHandler, admin_required
from gilhub.users import User, list_users


class AdminPageHandler(BaseHandler):
    @property
    def admin_url(self) -> str:
        return self.hub.hub_prefix + "admin"

    def back_to_admin(self, **shown: str) -> None:
        """Every form of the page posts elsewhere, then comes back here (303)."""
        self.redirect_after_post(self.admin_url, **shown)


class AdminHandler(AdminPageHandler):
    @admin_required
    async def get(self) -> None:
        async with self.hub.db.connect() as conn:
            users = await list_users(conn)
        rows = [(user, self.hub.servers.status(user.name)) for user in users]
        shown = self.take_shown()
        self.render_template(
            "admin.html",
            rows=rows,
            notice=shown.get("notice", ""),
            error=shown.get("error", ""),
            secret=shown.get("secret", ""),
            isolation=self.hub.isolation,
        )


class AdminUsersHandler(AdminPageHandler):
    """Adding a user; without a password given, one is generated and shown once."""

    @admin_required
    async def post(self) -> None:
        name = self.get_body_argument("username", "").strip()
        admin = self.get_body_argument("admin", "") == "on"
        try:
            _, new = await self.hub.accounts.create(
                name, self.get_body_argument("password", "") or None, admin=admin
            )
        except AccountError as error:
            self.back_to_admin(error=str(error))
            return
        notice = f"Added {name}."
        if new is not None and new.generated:
            self.back_to_admin(
                notice=notice + " Their one-time password (shown only now):", secret=new.password
            )
        else:
            self.back_to_admin(notice=notice)


class AdminUserActionHandler(AdminPageHandler):
    """``/hub/admin/users/NAME/(remove|password|admin|rename)``."""

    @admin_required
    async def post(self, name: str, action: str) -> None:
        try:
            user = await self.hub.accounts.get(name)
        except NoSuchUser as error:
            raise HTTPError(404, "No such user.") from error
        try:
            await getattr(self, f"do_{action}")(user)
        except AccountError as error:
            self.back_to_admin(error=str(error))

    async def do_remove(self, user: User) -> None:
        await self.hub.accounts.remove(user, by=self.current_user)
        self.back_to_admin(notice=f"Removed {user.name}.")

    async def do_password(self, user: User) -> None:
        new = await self.hub.accounts.set_password(user)
        self.back_to_admin(
            notice=f"New one-time password for {user.name} (shown only now):", secret=new.password
        )

    async def do_admin(self, user: User) -> None:
        make_admin = self.get_body_argument("value", "") == "1"
        await self.hub.accounts.set_admin(user, make_admin, by=self.current_user)
        verb = "is now an admin" if make_admin else "is no longer an admin"
        self.back_to_admin(notice=f"{user.name} {verb}.")

    async def do_rename(self, user: User) -> None:
        new_name = self.get_body_argument("new_name", "").strip()
        await self.hub.accounts.rename(user, new_name)
        self.back_to_admin(notice=f"{user.name} is now {new_name}.")
