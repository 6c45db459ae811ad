"""The runs service (``hub.runs``): a queue with limits, workers, cancel, re-adoption.

A run is asked for (:meth:`Runs.submit`: checked, the notebook snapshotted, the
row queued), started when the limits allow (:meth:`Runs._start_what_fits`,
oldest first, at most :attr:`~Runs.max_runs` at once and
:attr:`~Runs.max_runs_per_user` per user), executed by a worker process
(:mod:`.worker`) that writes its own progress, and watched until it ends: then
its token and database login are revoked and, if the worker died without
saying how the run ended, the run is marked failed.

Workers are started in a session of their own and outlive the hub: at start
the hub finds each running run's worker again by pid and process start time
(:meth:`Runs.restore`) and watches it by polling; a worker that is gone is
marked failed. The per-run timeout is counted from the run's start, so it holds
across restarts too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections import Counter
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Float, Integer, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from gilhub.auth.scopes import check_scopes_exist
from gilhub.contents import paths, roles
from gilhub.contents import query as contents
from gilhub.contents.errors import InvalidPath
from gilhub.repository import store
from gilhub.repository.errors import NotFound as RepositoryNotFound
from gilhub.runs import access, query
from gilhub.runs.errors import BadRunRequest, NotebookNotFound, RunFinished, RunNotFound
from gilhub.runs.parameters import Declared, declared_parameters_of
from gilhub.runs.query import Run
from gilhub.spawner.base import inherited_environment
from gilhub.spawner.process import (
    ChildProcess,
    find_process,
    is_windows,
    start_process,
    terminate_tree,
)
from gilhub.users import User

if TYPE_CHECKING:
    from gilhub.app import GilHub

#: The environment variable telling the kernel where the hub is (for its token).
HUB_URL_ENV = "GILHUB_HUB_URL"
_KERNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_POLL_SECONDS = 1.0
_RESCHEDULE_SECONDS = 30.0


class Runs(LoggingConfigurable):
    """Parameterised notebook runs executed as jobs (issue 12)."""

    token_env = Unicode(
        "GILHUB_RUN_TOKEN",
        config=True,
        help="Environment variable holding the run's API token in the kernel "
        "(e.g. MPPW_ACCESS_TOKEN).",
    )
    token_scopes = List(
        Unicode(),
        default_value=["read:users!user", "access:servers!user", "read:repo", "read:bib"],
        config=True,
        help="Scopes of the run's token (limited to what its user holds).",
    )

    @validate("token_scopes")
    def _known_scopes(self, proposal: Any) -> list[str]:
        check_scopes_exist(proposal["value"])
        return proposal["value"]

    default_kernel = Unicode("python3", config=True, help="Kernel when a run names none.")
    max_runs = Integer(4, config=True, help="Runs executing at once, over all users.")
    max_runs_per_user = Integer(2, config=True, help="Runs of one user executing at once.")
    run_timeout = Integer(3600, config=True, help="Seconds a run may take in all.")
    cell_timeout = Integer(600, config=True, help="Seconds one cell may take (0: no limit).")
    max_output_bytes = Integer(
        1_000_000, config=True, help="Bytes of output kept per cell; the rest is dropped, said so."
    )
    max_parameters_bytes = Integer(
        64 * 1024, config=True, help="Largest parameters object (as JSON) a run may be given."
    )
    stop_grace = Float(
        10.0,
        config=True,
        help="Seconds a cancelled run's worker gets to save its partial output, then to stop.",
    )

    def __init__(self, hub: GilHub, **kwargs: Any) -> None:
        super().__init__(parent=hub, **kwargs)
        self.hub = hub
        self._children: dict[int, ChildProcess] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    @property
    def engine(self) -> AsyncEngine:
        assert self.hub.db is not None
        return self.hub.db

    # -- asking for runs -------------------------------------------------------------

    async def submit(
        self,
        user: User,
        *,
        notebook: Any,
        source: Any = "storage",
        version: Any = None,
        parameters: Any = None,
        kernel: Any = None,
    ) -> Run:
        """Queue a run of ``notebook`` for ``user``; bad requests raise :class:`BadRunRequest`."""
        path, source, version = _checked_notebook(notebook, source, version)
        parameters = self._checked_parameters({} if parameters is None else parameters)
        kernel = _checked_kernel(kernel or self.default_kernel)
        owner = await roles.ensure_user_role(self.engine, user.name)
        content, version = await self._notebook_content(owner, path, source, version)
        async with self.engine.begin() as conn:
            run = await query.create_run(
                conn,
                user_id=user.id,
                owner=owner,
                notebook=path,
                source=source,
                version=version,
                parameters=parameters,
                kernel=kernel,
                content=content,
            )
        self._wake.set()
        return run

    def _checked_parameters(self, parameters: Any) -> dict[str, Any]:
        if not isinstance(parameters, dict):
            raise BadRunRequest("parameters must be a JSON object of names and values.")
        if len(json.dumps(parameters)) > self.max_parameters_bytes:
            raise BadRunRequest(f"parameters are larger than {self.max_parameters_bytes} bytes.")
        bad = [name for name in parameters if not name.isidentifier()]
        if bad:
            raise BadRunRequest(f"Parameter names must be identifiers: {', '.join(bad)}.")
        return parameters

    async def _notebook_content(
        self, owner: str, path: str, source: str, version: int | None
    ) -> tuple[bytes, int | None]:
        async with self.engine.connect() as conn:
            if source == "storage":
                found = await contents.read_file(conn, owner, path)
                content = found.content if found else None
            else:
                entry = await store.get_entry(conn, path)
                content = None
                if entry is not None and entry.kind == "notebook":
                    try:
                        stored = await store.get_version(conn, entry, version)
                    except RepositoryNotFound as error:
                        raise NotebookNotFound(error.message) from None
                    content, version = stored.content, stored.number
        if content is None:
            raise NotebookNotFound(f"No notebook {path!r} in the {source}.")
        await asyncio.to_thread(_check_notebook, path, content)
        return content, version

    async def declared_parameters(
        self, user: User, *, notebook: Any, source: Any = "storage", version: Any = None
    ) -> Declared:
        """The parameters ``notebook``'s ``parameters`` cell declares (for a form)."""
        path, source, version = _checked_notebook(notebook, source, version)
        owner = await roles.ensure_user_role(self.engine, user.name)
        content, _ = await self._notebook_content(owner, path, source, version)
        return await asyncio.to_thread(declared_parameters_of, content)

    # -- reading ---------------------------------------------------------------------

    async def get(self, run_id: int, asker: User) -> Run:
        """The run, if ``asker`` may see it (theirs, or any for an admin)."""
        async with self.engine.connect() as conn:
            run = await query.get_run(conn, run_id)
        if run.user_id != asker.id and not asker.is_admin:
            raise RunNotFound(f"No run {run_id}.")
        return run

    async def model(self, run: Run) -> dict[str, Any]:
        """The run as the API shows it, with its queue position and messages."""
        async with self.engine.connect() as conn:
            position = await query.queue_position(conn, run)
            messages = await query.messages_after(conn, run.id)
        return {
            **run.as_json(),
            "queue_position": position,
            "messages": [message.as_json() for message in messages],
        }

    async def list(self, asker: User, *, everyone: bool, limit: int) -> list[Run]:
        async with self.engine.connect() as conn:
            return await query.list_runs(conn, None if everyone else asker.id, limit)

    async def events(self, run: Run):
        """The run's model whenever it changes, then once more when it has ended."""
        last: dict[str, Any] | None = None
        while True:
            async with self.engine.connect() as conn:
                run = await query.get_run(conn, run.id)
            model = await self.model(run)
            if model != last:
                yield model
                last = model
            if run.finished:
                return
            await asyncio.sleep(_POLL_SECONDS)

    async def output(self, run: Run) -> bytes:
        """The executed notebook from the user's storage."""
        if run.output_path is None:
            raise NotebookNotFound(f"Run {run.id} has no output (yet).")
        async with self.engine.connect() as conn:
            found = await contents.read_file(conn, run.owner, run.output_path)
        if found is None:
            raise NotebookNotFound(f"The output {run.output_path!r} is no longer in storage.")
        return found.content

    # -- cancelling ------------------------------------------------------------------

    async def cancel(self, run: Run) -> Run:
        """Mark the run cancelled, interrupt its kernel so that the worker saves what ran,
        then end the worker's process tree (kernel included) if it is still there."""
        async with self.engine.begin() as conn:
            if not await query.finish_run(conn, run.id, "cancelled"):
                raise RunFinished(f"Run {run.id} has ended already.")
            await query.add_message(conn, run.id, run.owner, "INFO", "Cancelled.")
        worker = find_process(run.worker_pid, run.worker_started)
        if worker is not None:
            await self._interrupt(run, worker)
        await self._end_tree(run, worker)
        async with self.engine.connect() as conn:
            return await query.get_run(conn, run.id)

    # -- scheduling ------------------------------------------------------------------

    async def restore(self) -> None:
        """After a (re)start: watch the workers that outlived the hub, then the queue."""
        await self._adopt_running()
        self._scheduler = asyncio.create_task(self._schedule_forever())
        self._wake.set()

    async def _adopt_running(self) -> None:
        """Watch each running run nobody here watches (after a restart, or when a watcher
        could not record the end of its run); fail those whose worker is gone."""
        async with self.engine.connect() as conn:
            running = await query.runs_with_status(conn, "running")
        for run in running:
            if run.id in self._watchers:
                continue
            process = find_process(run.worker_pid, run.worker_started)
            if process is None:
                await self._ended(run, "The run's worker was gone when the hub looked for it.")
            else:
                self.log.info("Adopting run %s (worker pid %s)", run.id, run.worker_pid)
                self._watch(run, process, _poll_until_gone(process))

    async def stop(self) -> None:
        """Stop watching (the workers go on; the next hub re-adopts them)."""
        tasks = [task for task in (self._scheduler, *self._watchers.values()) if task]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _schedule_forever(self) -> None:
        """Start queued runs when woken (a run asked for or ended), and now and then
        anyway: for runs queued while a start failed (the database away) or by another hub,
        and runs whose end could not be recorded."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _RESCHEDULE_SECONDS)
            self._wake.clear()
            try:
                await self._adopt_running()
                await self._start_what_fits()
            except Exception:
                self.log.exception("Starting queued runs failed")

    async def _start_what_fits(self) -> None:
        async with self.engine.connect() as conn:
            queued = await query.runs_with_status(conn, "queued")
            running = await query.runs_with_status(conn, "running")
        per_user = Counter(run.user_id for run in running)
        for run in queued:
            if sum(per_user.values()) >= self.max_runs:
                return
            if per_user[run.user_id] >= self.max_runs_per_user:
                continue
            per_user[run.user_id] += 1
            await self._start(run)

    async def _start(self, run: Run) -> None:
        lifetime = timedelta(seconds=self.run_timeout + 60)
        token = await access.create_run_token(self.engine, run, tuple(self.token_scopes), lifetime)
        async with self.engine.begin() as conn:
            claimed = await query.claim_run(conn, run.id, token.info.id)
        if claimed is None:
            await access.revoke_run_token(self.engine, run, token.info.id)
            return
        run = claimed
        try:
            db_url = await access.run_database_url(self.engine, self.hub.db_url, run)
            child = await launch_worker(
                run,
                self._worker_args(run),
                self._worker_env(db_url, token.token),
                self._log_path(run),
            )
        except Exception as error:
            self.log.exception("Starting the worker of run %s failed", run.id)
            await self._ended(run, f"The run's worker could not start: {error}")
            return
        async with self.engine.begin() as conn:
            await query.record_worker(conn, run.id, child.pid, child.create_time)
        self._children[run.id] = child
        self._watch(run, find_process(child.pid, child.create_time), child.wait())

    def _worker_args(self, run: Run) -> list[str]:
        args = [str(run.id), f"--max-output-bytes={self.max_output_bytes}"]
        if self.cell_timeout:
            args.append(f"--cell-timeout={self.cell_timeout}")
        return args

    def _worker_env(self, db_url: str, token: str) -> dict[str, str]:
        return {
            **inherited_environment(),
            access.DB_URL_ENV: db_url,
            self.token_env: token,
            HUB_URL_ENV: self.hub.public_url,
        }

    def _log_path(self, run: Run) -> Path:
        return Path(self.hub.data_dir, "runs", f"{run.id}.log")

    # -- watching --------------------------------------------------------------------

    def _watch(self, run: Run, worker: psutil.Process | None, exited: Awaitable[Any]) -> None:
        """Follow ``run``'s ``worker`` until ``exited``, ending it at the run's timeout."""
        self._watchers[run.id] = asyncio.create_task(self._watch_until_ended(run, worker, exited))

    async def _watch_until_ended(
        self, run: Run, worker: psutil.Process | None, exited: Awaitable[Any]
    ) -> None:
        started = run.started or datetime.now(timezone.utc)
        remaining = self.run_timeout - (datetime.now(timezone.utc) - started).total_seconds()
        note = "The run's worker ended without saying how the run ended."
        try:
            try:
                await asyncio.wait_for(exited, max(remaining, 0))
            except asyncio.TimeoutError:
                note = f"The run took longer than its limit of {self.run_timeout} s."
                await self._end_tree(run, worker)
            self._children.pop(run.id, None)
            await self._ended(run, note)
        finally:
            # unwatched from here on: if the end could not be recorded, the scheduler
            # finds the run again (:meth:`_adopt_running`)
            self._watchers.pop(run.id, None)
        self._wake.set()

    async def _interrupt(self, run: Run, worker: psutil.Process) -> None:
        """SIGINT to the worker's kernel (a KeyboardInterrupt in the running cell), then up
        to :attr:`stop_grace` seconds for the worker to save the partial output and end.
        POSIX only: on Windows the tree is ended at once."""
        if is_windows():
            return
        import signal

        with contextlib.suppress(psutil.Error):
            for kernel in worker.children():
                kernel.send_signal(signal.SIGINT)
        child = self._children.get(run.id)
        exited = child.wait() if child is not None else _poll_until_gone(worker)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(exited, self.stop_grace)

    async def _end_tree(self, run: Run, worker: psutil.Process | None) -> None:
        """End the worker and everything it started (its kernel)."""
        if worker is not None:
            await terminate_tree(worker, child=self._children.get(run.id), grace=self.stop_grace)

    async def _ended(self, run: Run, note: str) -> None:
        """The worker is gone: fail the run if it is still active, revoke what it was given
        (``run`` as claimed or adopted: it knows its token; its row may be gone with its user)."""
        async with self.engine.begin() as conn:
            if await query.finish_run(
                conn, run.id, "failed", error_ename="RunError", error_evalue=note
            ):
                await query.add_message(conn, run.id, run.owner, "ERROR", note)
        await access.revoke_run_token(self.engine, run, run.token_id)
        await access.drop_run_role(self.engine, run.id)


async def launch_worker(
    run: Run, args: list[str], env: dict[str, str], log_path: Path
) -> ChildProcess:
    """Start the worker process of ``run``: the one place a run's process is made.

    Today it runs under the hub's own OS account, as its user's database role;
    routing it through the spawner's isolation (sandbox or system user, branch
    ``isolation``) is the next step and changes only this function.
    """
    cmd = [sys.executable, "-m", "gilhub.runs.worker", *args]
    return await start_process(cmd, env=env, cwd=log_path.parent, log_path=log_path)


async def _poll_until_gone(process: psutil.Process) -> None:
    """Wait for a process that is not the hub's child (a re-adopted worker) to end:
    nothing tells the hub when it does, so it looks now and then."""
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:  # noqa: ASYNC110
        await asyncio.sleep(_POLL_SECONDS)


def _checked_notebook(notebook: Any, source: Any, version: Any) -> tuple[str, str, int | None]:
    """The notebook's path, source and version, checked (:class:`BadRunRequest` if not)."""
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise BadRunRequest("notebook must be the path of a .ipynb file.")
    if source not in ("storage", "repository"):
        raise BadRunRequest("source must be 'storage' or 'repository'.")
    if version is not None and (source != "repository" or not _is_whole(version)):
        raise BadRunRequest("version must be a version number of a repository entry.")
    try:
        return paths.normalize(notebook), source, version
    except InvalidPath as error:
        raise BadRunRequest(str(error)) from None


def _check_notebook(path: str, content: bytes) -> None:
    try:
        nbformat.reads(content.decode("utf-8"), as_version=4)
    except Exception as error:  # nbformat raises several kinds for a broken file
        raise BadRunRequest(f"{path!r} is not a readable notebook: {error}") from None


def _checked_kernel(kernel: Any) -> str:
    if not isinstance(kernel, str) or not _KERNEL_NAME.match(kernel):
        raise BadRunRequest("kernel must be a kernel name such as 'python3'.")
    return kernel


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


async def start(hub: GilHub) -> Runs:
    """The hub's runs service (the part's start hook): re-adopts workers, starts the queue."""
    service = Runs(hub)
    await service.restore()
    return service


async def stop(hub: GilHub) -> None:
    if hub.runs is not None:
        await hub.runs.stop()
