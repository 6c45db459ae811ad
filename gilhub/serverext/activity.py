"""The activity handlers of a user's server: ``{base}gilhub/activity`` and its friends.

The JupyterLab extension posts cell executions and notebook events in batches; these
handlers check them whole (:mod:`gilhub.activity.events`), and the recorder
(:class:`~gilhub.activity.recorder.Recorder`) stores them as the user's own database role,
through the contents manager's connection pool, and answers with the prompts the rules ask
for. Requests are authenticated as any request to the server (its token, added by the hub's
proxy for the server's owner only); the database is reached asynchronously, so the server's
loop never waits on it. See ACTIVITY_API.md for the contract.

The hub passes the site's settings in the environment (:mod:`gilhub.activity.site`); a
server started without them, or with a contents manager other than gilhub's, records nothing.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from gilhub.activity.errors import BadActivity
from gilhub.activity.events import check_size, notebook_path, parse_answers, parse_events
from gilhub.activity.recorder import Recorder
from gilhub.activity.site import SiteSettings
from gilhub.activity.web import activity_errors
from gilhub.contents.manager import PostgresContentsManager

_SETTING = "gilhub_activity_recorder"


class ActivityHandler(APIHandler):
    auth_resource = "activity"

    @property
    def recorder(self) -> Recorder:
        return self.settings[_SETTING]

    def checked_body(self) -> Any:
        """The body as JSON, if it is within the size limit."""
        check_size(self.request.body)
        try:
            return json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise BadActivity("The request body is not valid JSON.") from None

    def reply(self, model: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model))


class RecordHandler(ActivityHandler):
    """``POST {base}gilhub/activity``: ``{"events": [...]}`` → ``{enabled, mode, prompts}``."""

    @web.authenticated
    @authorized
    @activity_errors
    async def post(self) -> None:
        self.reply(await self.recorder.record(parse_events(self.checked_body())))


class AskHandler(ActivityHandler):
    """``POST {base}gilhub/activity/ask?path=PATH``: prompts for the cells that changed most."""

    @web.authenticated
    @authorized
    @activity_errors
    async def post(self) -> None:
        path = notebook_path(self.get_query_argument("path", ""))
        self.reply(await self.recorder.ask(path))


class AnswersHandler(ActivityHandler):
    """``POST {base}gilhub/activity/answers``: ``{"answers": [...]}`` → ``{"stored": N}``."""

    @web.authenticated
    @authorized
    @activity_errors
    async def post(self) -> None:
        stored = await self.recorder.answer(parse_answers(self.checked_body()))
        self.reply({"stored": stored})


def install(serverapp: Any) -> None:
    """Add the handlers, with a recorder for the site's settings and this server's storage."""
    site = SiteSettings.from_environment()
    contents_manager = serverapp.contents_manager
    transaction = None
    if isinstance(contents_manager, PostgresContentsManager):
        transaction = contents_manager.transaction
    elif site.enabled:
        serverapp.log.warning("Activity is not recorded: it needs gilhub's contents manager")
    web_app = serverapp.web_app
    web_app.settings[_SETTING] = Recorder(site, transaction, serverapp.log)
    base = url_path_join(web_app.settings["base_url"], "gilhub", "activity")
    web_app.add_handlers(
        ".*$",
        [
            (base, RecordHandler),
            (url_path_join(base, "ask"), AskHandler),
            (url_path_join(base, "answers"), AnswersHandler),
        ],
    )
