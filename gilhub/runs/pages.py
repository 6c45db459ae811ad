"""The runs' pages: ``/hub/runs`` (the list) and ``/hub/runs/ID`` (one run, live)."""

from __future__ import annotations

from tornado.web import HTTPError

from gilhub.handlers.base import BaseHandler, login_required
from gilhub.runs.errors import RunNotFound

MAX_LISTED = 200


class RunListPageHandler(BaseHandler):
    @login_required
    async def get(self) -> None:
        runs = await self.hub.runs.list(self.current_user, everyone=False, limit=MAX_LISTED)
        await self.render_template("runs.html", runs=runs)


class RunPageHandler(BaseHandler):
    @login_required
    async def get(self, run_id: str) -> None:
        try:
            run = await self.hub.runs.get(int(run_id), self.current_user)
        except RunNotFound as error:
            raise HTTPError(404, error.message) from None
        model = await self.hub.runs.model(run)
        await self.render_template("run.html", run=model)


class DefinitionsPageHandler(BaseHandler):
    """The person's run definitions, with their schedules and latest reports."""

    @login_required
    async def get(self) -> None:
        found = await self.hub.runs.definitions.list(self.current_user)
        await self.render_template("runs_definitions.html", definitions=found)


handlers = [
    (r"/hub/runs", RunListPageHandler),
    (r"/hub/runs/(\d{1,18})", RunPageHandler),
    (r"/hub/runs/definitions", DefinitionsPageHandler),
]
