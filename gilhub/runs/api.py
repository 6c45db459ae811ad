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
from gilhub.repository.pages import notebook_view_html, send_view
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


class KernelsAPIHandler(RunsAPIHandler):
    """The kernels a run may name (``{kernels, default, any_kernel}``): what the runs'
    workers use, which a user's server, in an environment of its own, may not have."""

    @login_required
    @run_errors
    async def get(self) -> None:
        self.write_json(await self.hub.runs.kernels())


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
    """The run's model as ``text/event-stream`` whenever it changes (PostgreSQL
    notifications, not polling), until it has ended; a comment line keeps the stream
    alive while nothing changes."""

    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        run = await self.requested_run(run_id)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            async for model in self.hub.runs.events(run):
                if model is None:
                    self.write(": keep-alive\n\n")  # a comment: EventSource ignores it
                else:
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


class RunReportAPIHandler(RunsAPIHandler):
    """The executed notebook as a sanitised HTML report (citations linked, References
    added, MathJax from the hub), sandboxed by its Content-Security-Policy."""

    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        await self.send_report(await self.requested_run(run_id))

    async def send_report(self, run: Run) -> None:
        send_view(self, await notebook_view_html(self, await self.hub.runs.output(run)))


class RunCrateAPIHandler(RunsAPIHandler):
    """The run's provenance (RO-Crate, Process Run Crate) zipped with its outputs."""

    @login_required
    @run_errors
    async def get(self, run_id: str) -> None:
        run = await self.requested_run(run_id)
        output = await self.hub.runs.output_if_any(run)
        report = await notebook_view_html(self, output) if output is not None else None
        archive = await self.hub.runs.crate(run, output, report)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="run-{run.id}-crate.zip"')
        self.finish(archive)


# -- run definitions: a person's own only ----------------------------------------------


class DefinitionListAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def get(self) -> None:
        found = await self.hub.runs.definitions.list(self.current_user)
        self.write_json({"definitions": [definition.as_json() for definition in found]})

    @login_required
    @run_errors
    async def post(self) -> None:
        """``{"name", "notebook", "source", "version", "parameters", "kernel", "schedule",
        "paused", "keep_runs"}`` -> 201 with the definition."""
        definition = await self.hub.runs.definitions.create(self.current_user, self.json_object())
        self.set_header("Location", f"{self.hub.hub_prefix}api/run-definitions/{definition.id}")
        self.write_json(definition.as_json(), status=201)


class DefinitionAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def get(self, definition_id: str) -> None:
        definition = await self.hub.runs.definitions.get(self.current_user, int(definition_id))
        self.write_json(definition.as_json())

    @login_required
    @run_errors
    async def patch(self, definition_id: str) -> None:
        """Change any of the fields (``{"paused": true}`` pauses, ``false`` resumes)."""
        definition = await self.hub.runs.definitions.update(
            self.current_user, int(definition_id), self.json_object()
        )
        self.write_json(definition.as_json())

    @login_required
    @run_errors
    async def delete(self, definition_id: str) -> None:
        await self.hub.runs.definitions.delete(self.current_user, int(definition_id))
        self.set_status(204)
        self.finish()


class DefinitionRunsAPIHandler(RunsAPIHandler):
    @login_required
    @run_errors
    async def get(self, definition_id: str) -> None:
        """The definition's runs, newest first."""
        limit = max(1, min(self.int_argument("limit", 100) or 100, MAX_LIST))
        found = await self.hub.runs.definitions.runs_of(
            self.current_user, int(definition_id), limit=limit
        )
        self.write_json({"runs": [run.as_json() for run in found]})

    @login_required
    @run_errors
    async def post(self, definition_id: str) -> None:
        """Run the definition now -> 201 with the run."""
        run = await self.hub.runs.definitions.run_now(self.current_user, int(definition_id))
        self.set_header("Location", f"{self.hub.hub_prefix}api/runs/{run.id}")
        self.write_json(await self.hub.runs.model(run), status=201)


class LatestRunAPIHandler(RunsAPIHandler):
    """The newest completed run of a definition: a URL that stays the same."""

    @login_required
    @run_errors
    async def get(self, definition_id: str) -> None:
        run = await self.hub.runs.definitions.latest(self.current_user, int(definition_id))
        self.write_json(await self.hub.runs.model(run))


class LatestReportAPIHandler(RunReportAPIHandler):
    """The report of the newest completed run of a definition."""

    @login_required
    @run_errors
    async def get(self, definition_id: str) -> None:
        run = await self.hub.runs.definitions.latest(self.current_user, int(definition_id))
        await self.send_report(run)


handlers = [
    (r"/hub/api/runs", RunListAPIHandler),
    (r"/hub/api/runs/parameters", ParametersAPIHandler),
    (r"/hub/api/runs/kernels", KernelsAPIHandler),
    (r"/hub/api/runs/(\d{1,18})", RunAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/cancel", RunCancelAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/events", RunEventsAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/output", RunOutputAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/report", RunReportAPIHandler),
    (r"/hub/api/runs/(\d{1,18})/crate", RunCrateAPIHandler),
    (r"/hub/api/run-definitions", DefinitionListAPIHandler),
    (r"/hub/api/run-definitions/(\d{1,18})", DefinitionAPIHandler),
    (r"/hub/api/run-definitions/(\d{1,18})/runs", DefinitionRunsAPIHandler),
    (r"/hub/api/run-definitions/(\d{1,18})/latest", LatestRunAPIHandler),
    (r"/hub/api/run-definitions/(\d{1,18})/latest/report", LatestReportAPIHandler),
]
