"""The runs' REST API under ``/hub/api/runs``.

People see and cancel their own runs; administrators see and cancel everyone's.
Tokens need ``read:runs`` to read and ``runs`` to start or cancel.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.iostream import StreamClosedError

from gilhub.apihandlers.base import APIHandler
from gilhub.handlers.base import login_required
from gilhub.runs.errors import BadRunRequest
from gilhub.runs.query import Run
from gilhub.runs.web import run_errors

MAX_LIST = 500


class RunsAPIHandler(APIHandler):
    token_scopes = ("read:runs", "runs")

    async def requested_run(self, run_id: str) -> Run:
        return await self.hub.runs.get(int(run_id), self.current_user)


class RunListAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def get(self) -> None:
        limit = max(1, min(self.int_argument("limit", 100) or 100, MAX_LIST))
        everyone = self.current_user.is_admin and self.get_query_argument("all", "") == "1"
        runs = await self.hub.runs.list(self.current_user, everyone=everyone, limit=limit)
        self.write_json({"runs": [run.as_json() for run in runs]})

    @login_required
    @run_errors
    async def post(self) -> None:
        """``{"notebook", "source", "version", "parameters", "kernel"}`` -> 201 with the run."""
        body = self.json_object()
        fields = ("notebook", "source", "version", "parameters", "kernel")
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise BadRunRequest(f"Unknown fields: {', '.join(unknown)}.")
        run = await self.hub.runs.submit(
            self.current_user, **{name: body[name] for name in fields if name in body}
        )
        self.set_header("Location", f"{self.hub.hub_prefix}api/runs/{run.id}")
        self.write_json(await self.hub.runs.model(run), status=201)


class ParametersAPIHandler(RunsAPIHandler):
    """``?notebook=PATH[&source=repository&version=N]``: what its ``parameters`` cell
    declares (names, inferred types, defaults, help), to build a form from."""

    @login_required
    @run_errors
    async def get(self) -> None:
        declared = await self.hub.runs.declared_parameters(
            self.current_user,
            notebook=self.get_query_argument("notebook", ""),
            source=self.get_query_argument("source", "storage"),
            version=self.int_argument("version"),
        )
        self.write_json(
            {"has_parameters_cell": declared.has_cell, "parameters": declared.parameters}
        )


class RunAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        self.write_json(await self.hub.runs.model(await self.requested_run(run_id)))


class RunCancelAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def post(self, run_id: str) -> None:
        run = await self.hub.runs.cancel(await self.requested_run(run_id))
        self.write_json(await self.hub.runs.model(run))


class RunEventsAPIHandler(RunsAPIHandler):
    """The run's model as ``text/event-stream`` whenever it changes, until it has ended."""

    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        run = await self.requested_run(run_id)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            async for model in self.hub.runs.events(run):
                self.write(f"data: {json.dumps(model, default=str)}\n\n")
                await self.flush()
        except StreamClosedError:
            return
        self.finish()


class RunOutputAPIHandler(RunsAPIHandler):
    """The executed notebook."""

    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        run = await self.requested_run(run_id)
        content = await self.hub.runs.output(run)
        name = run.output_path.rsplit("/", 1)[-1] if run.output_path else "output.ipynb"
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.finish(content)


handlers = [
    (r"/hub/api/runs", RunListAPIHandler),
    (r"/hub/api/runs/parameters", ParametersAPIHandler),
    (r"/hub/api/runs/(\d{1,18})", RunAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/cancel", RunCancelAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/events", RunEventsAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/output", RunOutputAPIHandler),
]
