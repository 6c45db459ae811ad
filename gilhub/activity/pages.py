"""The activity's pages: ``/hub/activity`` (the user's switch and notebooks; for
administrators, counts per user and the stories shared with them) and
``/hub/activity/PATH`` (a notebook's story). Their forms switch recording on or off, share a
story with administrators, and delete the record (all of it, or one notebook's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from tornado.web import HTTPError

from gilhub.activity.errors import ActivityError
from gilhub.activity.web import activity_errors
from gilhub.handlers.base import BaseHandler, login_required
from gilhub.pagetime import time_element


def iso_time(value: str) -> Markup:
    """An ISO time of the narrative, as the pages show times."""
    return time_element(datetime.fromisoformat(value))


class ActivityPageHandler(BaseHandler):
    def template_namespace(self) -> dict[str, Any]:
        return {
            **super().template_namespace(),
            "iso_time": iso_time,
            "story_url": self.story_url,
        }

    def story_url(self, path: str, user: str | None = None) -> str:
        url = f"{self.hub.hub_prefix}activity/{quote(path)}"
        return f"{url}?{urlencode({'user': user})}" if user else url

    async def acting(self, action: Any) -> Any:
        """``await action``, its errors as HTTP errors (the page shows the message)."""
        try:
            return await action
        except ActivityError as error:
            raise HTTPError(activity_errors.status(error), error.message) from None


class ActivityListPageHandler(ActivityPageHandler):
    @login_required
    async def get(self) -> None:
        activity = self.hub.activity
        user = self.current_user
        counts = await activity.counts() if user.is_admin else []
        await self.render_template(
            "activity.html",
            settings=await activity.settings(user),
            notebooks=await activity.notebooks(user),
            counts=counts,
        )

    @login_required
    async def post(self) -> None:
        """``action``: ``enable``, ``disable`` (the user's switch) or ``delete`` (all)."""
        action = self.get_body_argument("action", "")
        if action in ("enable", "disable"):
            await self.hub.activity.set_enabled(self.current_user, action == "enable")
        elif action == "delete":
            await self.hub.activity.delete(self.current_user)
        else:
            raise HTTPError(400, "action must be enable, disable or delete.")
        self.redirect(f"{self.hub.hub_prefix}activity")


class StoryPageHandler(ActivityPageHandler):
    @login_required
    async def get(self, path: str) -> None:
        """The user's own story, or (``?user=NAME``, administrators) one NAME shares."""
        activity, user = self.hub.activity, self.current_user
        of = self.get_query_argument("user", None)
        story = await self.acting(activity.narrative(user, path, of))
        own = of is None or of == user.name
        shared = own and story["path"] in await activity.shared_paths(user)
        await self.render_template(
            "activity_story.html", story=story, own=own, shared=shared, owner_name=of
        )

    @login_required
    async def post(self, path: str) -> None:
        """``action``: ``share``, ``unshare`` (with administrators) or ``delete`` (the
        record of this notebook)."""
        action = self.get_body_argument("action", "")
        activity, user = self.hub.activity, self.current_user
        if action in ("share", "unshare"):
            await self.acting(activity.share(user, path, action == "share"))
            self.redirect(self.story_url(path))
        elif action == "delete":
            await self.acting(activity.delete(user, path))
            self.redirect(f"{self.hub.hub_prefix}activity")
        else:
            raise HTTPError(400, "action must be share, unshare or delete.")


handlers = [
    (r"/hub/activity", ActivityListPageHandler),
    (r"/hub/activity/(.+)", StoryPageHandler),
]
