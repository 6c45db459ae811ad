"""Notebooks and people for the runs tests (local workers here, Slurm jobs in tests/slurm)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

import httpx
import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.contents import query as contents
from gilhub.contents import roles
from tests.hub.conftest import RunningHub

#: A guard against a hung test, not a measurement.
PATIENCE_SECONDS = 180
#: Prints, then sleeps in its second cell until interrupted.
SLEEPY = "sleepy.ipynb"


def notebook(*sources: str, parameters: str | None = None) -> bytes:
    """A Python notebook of ``sources``, after a ``parameters`` cell when given."""
    cells = [new_code_cell(source) for source in sources]
    if parameters is not None:
        cells.insert(0, new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb).encode("utf-8")


class RunsUser(ABC):
    """Someone using runs: their storage (as their own database role) and the runs API."""

    role: str

    @property
    @abstractmethod
    def db(self) -> AsyncEngine:
        """The hub's database."""

    @abstractmethod
    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the hub, with this person's token."""

    async def save(self, path: str, content: bytes) -> None:
        async with self.db.begin() as conn:
            await contents.write_file(conn, self.role, path, content)

    async def load(self, path: str) -> bytes:
        async with self.db.connect() as conn:
            return (await contents.read_file(conn, self.role, path)).content

    async def start(self, path: str, **body) -> dict:
        response = await self.request("POST", "/hub/api/runs", json={"notebook": path, **body})
        assert response.status_code == 201, response.text
        return response.json()

    async def run(self, path: str, content: bytes, **body) -> dict:
        """Save ``content`` at ``path``, run it and wait for the run to end."""
        await self.save(path, content)
        return await self.finished(await self.start(path, **body))

    async def finished(self, run: dict) -> dict:
        return await self.wait_for(run, lambda model: model["status"] not in ("queued", "running"))

    async def wait_for(self, run: dict, condition) -> dict:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                model = (await self.request("GET", f"/hub/api/runs/{run['id']}")).json()
                if condition(model):
                    return model
                await asyncio.sleep(0.2)

    async def start_sleepy_run(self) -> dict:
        """A run of :data:`SLEEPY`, once its first cell has printed and the second sleeps."""
        await self.save(SLEEPY, notebook("print('before')", "import time\ntime.sleep(600)"))
        run = await self.start(SLEEPY)
        await self.wait_for(run, lambda model: model["current_cell"] == 1)
        return run

    async def cancel(self, run: dict) -> dict:
        """Cancel ``run`` through the API (the cancel returns once the worker has ended)."""
        response = await self.request("POST", f"/hub/api/runs/{run['id']}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        return response.json()

    async def assert_partial_output_kept(self, run: dict) -> None:
        """The cancelled sleepy ``run`` saved the notebook as far as it ran: the first cell's
        output and the interrupted second cell."""
        cancelled = (await self.request("GET", f"/hub/api/runs/{run['id']}")).json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["output_path"], cancelled
        partial = (await self.load(cancelled["output_path"])).decode()
        assert "before" in partial and "KeyboardInterrupt" in partial


class Person(RunsUser):
    def __init__(self, hub: RunningHub, name: str, role: str, api: httpx.AsyncClient):
        self.hub, self.name, self.role, self.api = hub, name, role, api

    @property
    def db(self) -> AsyncEngine:
        return self.hub.app.db

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.api.request(method, path, **kwargs)

    async def move_to(self, hub: RunningHub) -> None:
        """Talk to ``hub`` (another hub on the same database) from now on."""
        self.hub = hub
        self.api = hub.client(headers={"Authorization": f"token {await hub.token_for(self.name)}"})


async def person(hub: RunningHub, name: str, *, admin: bool = False) -> Person:
    await hub.add_user(name, admin=admin)
    role = await roles.ensure_user_role(hub.app.db, name)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    return Person(hub, name, role, api)
