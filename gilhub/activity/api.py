"""The activity's REST API under ``/hub/api/activity`` (see ACTIVITY_API.md).

Everyone reads, exports and deletes only their own record, and switches only their own
recording; administrators see counts per user, and the stories users share with them
(``?user=NAME``). Tokens need ``read:activity`` to read and ``activity`` to change.
"""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import quote

from gilhub.activity.errors import BadActivity
from gilhub.activity.web import activity_errors
from gilhub.apihandlers.base import APIHandler
from gilhub.handlers.base import admin_required, login_required

#: format -> (content type, file suffix) of an export.
EXPORTS = {
    "markdown": ("text/markdown; charset=UTF-8", "-story.md"),
    "notebook": ("application/x-ipynb+json", "-story.ipynb"),
}


class ActivityAPIHandler(APIHandler):
    token_scopes = ("read:activity", "activity")

    def path_argument(self) -> str | None:
        return self.get_query_argument("path", None)

    def flag_body(self, name: str) -> bool:
        """The body ``{name: true|false}``, nothing else."""
        body = self.json_object()
        if set(body) != {name} or not isinstance(body[name], bool):
            raise BadActivity(f'The body must be {{"{name}": true}} or {{"{name}": false}}.')
        return body[name]

    def owner_argument(self) -> str | None:
        """``user=NAME``: an administrator reading a story NAME shares."""
        return self.get_query_argument("user", None)


class SettingsAPIHandler(ActivityAPIHandler):
    @login_required
    async def get(self) -> None:
        self.write_json(await self.hub.activity.settings(self.current_user))

    @login_required
    @activity_errors
    async def put(self) -> None:
        enabled = self.flag_body("enabled")
        self.write_json(await self.hub.activity.set_enabled(self.current_user, enabled))


class NarrativeAPIHandler(ActivityAPIHandler):
    @login_required
    @activity_errors
    async def get(self) -> None:
        story = await self.hub.activity.narrative(
            self.current_user, self.path_argument(), self.owner_argument()
        )
        self.write_json(story)

    @login_required
    @activity_errors
    async def delete(self) -> None:
        """One notebook's record with ``?path=``, else all of it."""
        await self.hub.activity.delete(self.current_user, self.path_argument())
        self.set_status(204)
        self.finish()


class ExportAPIHandler(ActivityAPIHandler):
    @login_required
    @activity_errors
    async def get(self) -> None:
        format = self.get_query_argument("format", "markdown")
        if format not in EXPORTS:
            raise BadActivity("format must be markdown or notebook.")
        path = self.path_argument()
        document = await self.hub.activity.export(
            self.current_user, path, format, self.owner_argument()
        )
        content_type, suffix = EXPORTS[format]
        name = (path or "").rsplit("/", 1)[-1].removesuffix(".ipynb") + suffix
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.finish(document)


class SharingAPIHandler(ActivityAPIHandler):
    """``PUT ?path=PATH`` ``{"shared": bool}``: share a story with administrators, or stop."""

    @login_required
    @activity_errors
    async def put(self) -> None:
        shared = self.flag_body("shared")
        self.write_json(
            await self.hub.activity.share(self.current_user, self.path_argument(), shared)
        )


class NotebooksAPIHandler(ActivityAPIHandler):
    @login_required
    async def get(self) -> None:
        found = await self.hub.activity.notebooks(self.current_user)
        self.write_json({"notebooks": [notebook.as_json() for notebook in found]})


class CountsAPIHandler(APIHandler):
    """Administrators: how much is recorded per user (counts only, never content)."""

    token_scopes = ("admin-ui", "admin-ui")

    @admin_required
    async def get(self) -> None:
        counts = await self.hub.activity.counts()
        self.write_json({"users": [asdict(row) for row in counts]})


handlers = [
    (r"/hub/api/activity", NarrativeAPIHandler),
    (r"/hub/api/activity/settings", SettingsAPIHandler),
    (r"/hub/api/activity/export", ExportAPIHandler),
    (r"/hub/api/activity/notebooks", NotebooksAPIHandler),
    (r"/hub/api/activity/sharing", SharingAPIHandler),
    (r"/hub/api/activity/counts", CountsAPIHandler),
]
