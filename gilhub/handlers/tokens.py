"""``/hub/token``: people create and revoke their own API tokens (shown once)."""

from __future__ import annotations

import re
from datetime import timedelta

from tornado.web import HTTPError

from gilhub.auth import scopes
from gilhub.auth.tokens import create_token, list_tokens
from gilhub.handlers.base import BaseHandler, login_required

#: Lifetimes offered on the page, in days (0: never expires).
LIFETIMES = {"0": None, "1": 1, "7": 7, "30": 30, "365": 365}


class TokenPageHandler(BaseHandler):
    def back_to_tokens(self, **shown: str) -> None:
        """The forms post, then come back to the page (303) with what they have to say."""
        self.redirect_after_post(self.hub.hub_prefix + "token", **shown)

    @login_required
    async def get(self) -> None:
        user = self.current_user
        assert user is not None
        async with self.hub.db.connect() as conn:
            tokens = await list_tokens(conn, user.id)
        shown = self.take_shown()
        self.render_template(
            "token.html",
            tokens=tokens,
            new_token=shown.get("new_token", ""),
            notice=shown.get("notice", ""),
            problem=shown.get("problem", ""),
            scope_names=[name for name in scopes.SCOPES if name != "self"],
        )

    @login_required
    async def post(self) -> None:
        user = self.current_user
        assert user is not None
        note = self.get_body_argument("note", "").strip()[:200] or "Created on the token page"
        lifetime = LIFETIMES.get(self.get_body_argument("expires_in_days", "0"))
        wanted = re.split(r"[\s,]+", self.get_body_argument("scopes", "")[:4000].strip())
        try:
            token_scopes = scopes.scopes_for_new_token(
                user, self.hub.admin_access, scopes=[s for s in wanted if s] or None
            )
        except scopes.ScopeError as error:
            self.back_to_tokens(problem=str(error))
            return
        async with self.hub.db.begin() as conn:
            new = await create_token(
                conn, user.id, note, timedelta(days=lifetime) if lifetime else None, token_scopes
            )
        self.back_to_tokens(new_token=new.token)


class TokenRevokeHandler(TokenPageHandler):
    SUPPORTED_METHODS = ("POST",)  # the page's revoke button; any other method is a 405

    @login_required
    async def post(self, token_id: str) -> None:
        user = self.current_user
        assert user is not None
        if not await self.hub.accounts.revoke_token(user, int(token_id)):
            raise HTTPError(404, "No such token.")
        self.back_to_tokens(notice="Token revoked.")
