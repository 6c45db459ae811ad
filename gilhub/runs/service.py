"""The runs service (``hub.runs``): a queue with limits, workers, cancel, re-adoption.

A run is asked for (:meth:`Runs.submit`: checked, the notebook snapshotted, the
row queued), started when the limits allow (:meth:`Runs._start_what_fits`,
oldest first, at most :attr:`~Runs.max_runs` at once and
:attr:`~Runs.max_runs_per_user` per user), executed by a worker process
(:mod:`.worker`) that writes its own progress, and watched until it ends: then
its token and database login are revoked and, if the worker died without
saying how the run ended, the run is marked failed.

Workers are started by the user's spawner (:meth:`~gilhub.spawner.base.Spawner.start_job`:
a process in a session of its own, or a Slurm job) and outlive the hub: each is
recorded as its :class:`~gilhub.spawner.jobs.Job`'s state, and at start the hub
finds each running run's worker again through the spawner (:meth:`Runs.restore`)
and watches it; a worker that is gone is marked failed. The per-run timeout is
counted from the run's start, so it holds across restarts too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Bool, Float, Integer, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from gilhub.auth.scopes import check_scopes_exist
from gilhub.contents import paths, roles
from gilhub.contents import query as contents
from gilhub.contents.errors import InvalidPath
from gilhub.db.notify import Listener, libpq_url
from gilhub.repository import store
from gilhub.repository.errors import NotFound as RepositoryNotFound
from gilhub.runs import access, definitions, query
from gilhub.runs.crate import RunFiles, crate_zip
from gilhub.runs.errors import BadRunRequest, NotebookNotFound, RunFinished, RunNotFound
from gilhub.runs.parameters import Declared, declared_parameters_of
from gilhub.runs.query import RUNS_CHANNEL, Run
from gilhub.runs.schedules import RunDefinitions
from gilhub.spawner.base import Spawner, inherited_environment
from gilhub.spawner.jobs import Job
from gilhub.users import User, get_user_by_id

if TYPE_CHECKING:
    from gilhub.app import GilHub

#: The environment variable telling the kernel where the hub is (for its token).
HUB_URL_ENV = "GILHUB_HUB_URL"
WORKER_MODULE = "gilhub.runs.worker"
_KERNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Changes heard within this time of each other make one event.
_COALESCE_SECONDS = 0.05
_RESCHEDULE_SECONDS = 30.0


@dataclass(frozen=True)
class RunRequest:
    """A checked request for a run: its ``fields`` as asked (``version`` ``None`` for a
    repository entry's newest), and the notebook as it is now, at ``resolved_version``."""

    fields: dict[str, Any]
    owner: str
    content: bytes
    resolved_version: int | None


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
    max_streamed_bytes = Integer(
        64 * 1024,
        config=True,
        help="Bytes of a run's printed output (stdout, stderr) copied into its messages as it "
        "runs; the rest stays in the executed notebook only, said so.",
    )
    worker_cmd = List(
        Unicode(),
        default_value=[sys.executable, "-m", WORKER_MODULE],
        config=True,
        help="The command that runs a worker (its arguments follow). It runs in the user's "
        "account and sandbox, so every account must be able to run its Python.",
    )
    max_parameters_bytes = Integer(
        64 * 1024, config=True, help="Largest parameters object (as JSON) a run may be given."
    )
    known_kernels_only = Bool(
        True,
        config=True,
        help="Refuse runs (HTTP 400) of a kernel not installed where the hub finds kernels; "
        "turn off where users install kernels of their own in their homes.",
    )
    events_keepalive = Float(
        15.0,
        config=True,
        help="Seconds between keep-alives of a run's event stream while nothing changes "
        "(it also looks at the run then, in case a notification was missed).",
    )
    stop_grace = Float(
        10.0,
        config=True,
        help="Seconds a cancelled run's worker gets to save its partial output, then to stop.",
    )

    def __init__(self, hub: GilHub, **kwargs: Any) -> None:
        super().__init__(parent=hub, **kwargs)
        self.hub = hub
        #: The workers of the runs this hub watches.
        self._jobs: dict[int, Job] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._definitions_scheduler: asyncio.Task[None] | None = None
        #: Run definitions and their schedules.
        self.definitions = RunDefinitions(self)
        #: The event streams following each run, woken when it changes.
        self._followers: dict[int, set[asyncio.Event]] = {}
        self._listener = Listener(
            libpq_url(hub.db_url),
            RUNS_CHANNEL,
            self._heard,
            self.log,
            what="runs' changes",
            connected=self._wake_followers,
        )

    @property
    def engine(self) -> AsyncEngine:
        assert self.hub.db is not None
        return self.hub.db

    # -- asking for runs -------------------------------------------------------------

    async def submit(self, user: User, *, definition_id: int | None = None, **asked: Any) -> Run:
        """Queue a run for ``user`` (of a run definition, if given) of what ``asked`` names
        (see :meth:`checked_request`)."""
        request = await self.checked_request(user, **asked)
        async with self.engine.begin() as conn:
            run = await query.create_run(
                conn,
                user_id=user.id,
                owner=request.owner,
                content=request.content,
                **{**request.fields, "version": request.resolved_version},
            )
            if definition_id is not None:
                await definitions.link_run(conn, definition_id, run.id)
        self._wake.set()
        return run

    async def checked_request(
        self,
        user: User,
        *,
        notebook: Any = None,
        source: Any = "storage",
        version: Any = None,
        parameters: Any = None,
        kernel: Any = None,
    ) -> RunRequest:
        """What a run of ``notebook`` asks for, checked, with the notebook as it is now:
        :class:`BadRunRequest` for malformed fields or a kernel not installed,
        :class:`NotebookNotFound` for a notebook that is not there."""
        path, source, version = _checked_notebook(notebook, source, version)
        fields = {
            "notebook": path,
            "source": source,
            "version": version,
            "parameters": self._checked_parameters({} if parameters is None else parameters),
            "kernel": await self._checked_kernel(kernel or self.default_kernel),
        }
        owner = await roles.ensure_user_role(self.engine, user.name)
        content, resolved = await self._notebook_content(owner, path, source, version)
        return RunRequest(fields, owner, content, resolved)

    async def _checked_kernel(self, kernel: Any) -> str:
        if not isinstance(kernel, str) or not _KERNEL_NAME.match(kernel):
            raise BadRunRequest("kernel must be a kernel name such as 'python3'.")
        if self.known_kernels_only:
            installed = await asyncio.to_thread(installed_kernels)
            if kernel not in installed:
                raise BadRunRequest(
                    f"No kernel named {kernel!r} is installed "
                    f"(installed: {', '.join(sorted(installed)) or 'none'})."
                )
        return kernel

    async def kernels(self) -> dict[str, Any]:
        """The kernels a run may name, for a form: those installed where the hub looks, the
        default, and whether other names are accepted too (``known_kernels_only`` off: the
        worker then looks a kernel up in the user's own environment)."""
        installed = await asyncio.to_thread(installed_kernels)
        return {
            "kernels": [kernel.as_json() for kernel in installed.values()],
            "default": self.default_kernel,
            "any_kernel": not self.known_kernels_only,
        }

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

    async def events(self, run: Run) -> AsyncIterator[dict[str, Any] | None]:
        """The run's model whenever it changes, until it has ended; ``None`` now and then
        while nothing changes (for a keep-alive). Woken by the run's notifications
        (:data:`~.query.RUNS_CHANNEL`, from the hub and the worker), and every
        :attr:`events_keepalive` seconds anyway, in case one was missed."""
        changed = asyncio.Event()
        self._followers.setdefault(run.id, set()).add(changed)
        try:
            last: dict[str, Any] | None = None
            while True:
                changed.clear()
                async with self.engine.connect() as conn:
                    run = await query.get_run(conn, run.id)
                model = await self.model(run)
                if model != last:
                    yield model
                    last = model
                if run.finished:
                    return
                try:
                    await asyncio.wait_for(changed.wait(), self.events_keepalive)
                except asyncio.TimeoutError:
                    yield None
                    continue
                await asyncio.sleep(_COALESCE_SECONDS)  # a burst of changes: one model
        finally:
            followers = self._followers[run.id]
            followers.discard(changed)
            if not followers:
                del self._followers[run.id]

    async def _heard(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for changed in self._followers.get(int(payload), ()):
                changed.set()

    def _wake_followers(self) -> None:
        """Listening (again): what changed meanwhile was not heard, so every stream looks."""
        for followers in self._followers.values():
            for changed in followers:
                changed.set()

    async def output(self, run: Run) -> bytes:
        """The executed notebook from the user's storage."""
        content = await self.output_if_any(run)
        if content is None:
            raise NotebookNotFound(f"Run {run.id} has no output (yet, or any more).")
        return content

    async def output_if_any(self, run: Run) -> bytes | None:
        """The executed notebook, or ``None`` when there is none (yet, or any more)."""
        if run.output_path is None:
            return None
        async with self.engine.connect() as conn:
            found = await contents.read_file(conn, run.owner, run.output_path)
        return found.content if found is not None else None

    async def crate(self, run: Run, output: bytes | None, report: str | None) -> bytes:
        """The run's RO-Crate (:mod:`.crate`) zipped with the notebook, output and report."""
        async with self.engine.connect() as conn:
            notebook = await query.run_content(conn, run.id)
            user = await get_user_by_id(conn, run.user_id)
        if user is None:
            raise RunNotFound(f"No run {run.id}.")
        files = RunFiles(notebook=notebook, output=output, report=report)
        return await asyncio.to_thread(crate_zip, run, user.name, self.hub.public_url, files)

    # -- cancelling ------------------------------------------------------------------

    async def cancel(self, run: Run) -> Run:
        """Mark the run cancelled, interrupt its kernel so that the worker saves what ran,
        then end the worker's process tree (kernel included) if it is still there."""
        async with self.engine.begin() as conn:
            if not await query.finish_run(conn, run.id, "cancelled"):
                raise RunFinished(f"Run {run.id} has ended already.")
            await query.add_message(conn, run.id, run.owner, "INFO", "Cancelled.")
        worker = self._jobs.get(run.id) or await self._find_worker(run)
        if worker is not None:
            await self._interrupt(worker)
            await worker.end(self.stop_grace)
        async with self.engine.connect() as conn:
            return await query.get_run(conn, run.id)

    # -- scheduling ------------------------------------------------------------------

    async def restore(self) -> None:
        """After a (re)start: watch the workers that outlived the hub, then the queue."""
        self._listener.start()
        await self._adopt_running()
        self._scheduler = asyncio.create_task(self._schedule_forever())
        self._definitions_scheduler = asyncio.create_task(self.definitions.schedule_forever())
        self._wake.set()

    async def _adopt_running(self) -> None:
        """Watch each running run nobody here watches (after a restart, or when a watcher
        could not record the end of its run); fail those whose worker is gone."""
        async with self.engine.connect() as conn:
            running = await query.runs_with_status(conn, "running")
        for run in running:
            if run.id in self._watchers:
                continue
            worker = await self._find_worker(run)
            if worker is None:
                await self._ended(run, "The run's worker was gone when the hub looked for it.")
            else:
                self.log.info("Adopting run %s (worker %s)", run.id, run.worker)
                self._watch(run, worker)

    async def stop(self) -> None:
        """Stop watching (the workers go on; the next hub re-adopts them)."""
        await self._listener.stop()
        tasks = [self._scheduler, self._definitions_scheduler, *self._watchers.values()]
        tasks = [task for task in tasks if task]
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
            worker = await self._launch_worker(run, self._worker_env(db_url, token.token))
        except Exception as error:
            self.log.exception("Starting the worker of run %s failed", run.id)
            await self._ended(run, f"The run's worker could not start: {error}")
            return
        async with self.engine.begin() as conn:
            await query.record_worker(conn, run.id, worker.state())
        self._watch(run, worker)

    async def _launch_worker(self, run: Run, env: dict[str, str]) -> Job:
        """Start the worker of ``run`` the way its user's server is started (the spawner's
        :meth:`~gilhub.spawner.base.Spawner.start_job`): in the user's system account and
        sandbox, with their home (or as their Slurm job), so a notebook run can reach no
        more than their server."""
        cmd = [*self.worker_cmd, *self._worker_args(run)]
        spawner = await self._spawner_of(run)
        return await spawner.start_job(cmd, env=env, log_path=self._log_path(run))

    async def _find_worker(self, run: Run) -> Job | None:
        """The recorded worker of ``run`` (after a restart), ``None`` when it is gone."""
        if run.worker is None:
            return None
        try:
            spawner = await self._spawner_of(run)
        except RunNotFound:
            return None
        return await spawner.find_job(run.worker)

    async def _spawner_of(self, run: Run) -> Spawner:
        async with self.engine.connect() as conn:
            user = await get_user_by_id(conn, run.user_id)
        if user is None:
            raise RunNotFound(f"The user of run {run.id} is gone.")
        return self.hub.spawner_class(hub=self.hub, user=user, parent=self.hub)

    def _worker_args(self, run: Run) -> list[str]:
        args = [
            str(run.id),
            f"--max-output-bytes={self.max_output_bytes}",
            f"--max-streamed-bytes={self.max_streamed_bytes}",
        ]
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

    def _watch(self, run: Run, worker: Job) -> None:
        """Follow ``run``'s ``worker`` until it ends, ending it at the run's timeout."""
        self._jobs[run.id] = worker
        self._watchers[run.id] = asyncio.create_task(self._watch_until_ended(run, worker))

    async def _watch_until_ended(self, run: Run, worker: Job) -> None:
        started = run.started or datetime.now(timezone.utc)
        remaining = self.run_timeout - (datetime.now(timezone.utc) - started).total_seconds()
        note = "The run's worker ended without saying how the run ended."
        try:
            try:
                await asyncio.wait_for(worker.wait(), max(remaining, 0))
            except asyncio.TimeoutError:
                note = f"The run took longer than its limit of {self.run_timeout} s."
                await worker.end(self.stop_grace)
            await self._ended(run, note)
        finally:
            self._jobs.pop(run.id, None)
            # unwatched from here on: if the end could not be recorded, the scheduler
            # finds the run again (:meth:`_adopt_running`)
            self._watchers.pop(run.id, None)
        self._wake.set()

    async def _interrupt(self, worker: Job) -> None:
        """Interrupt the worker's kernel (a KeyboardInterrupt in the running cell), then
        give the worker up to :attr:`stop_grace` seconds to save the partial output and end
        (a Slurm job is cancelled at once: its partial output is lost)."""
        if not await worker.interrupt(spare=WORKER_MODULE):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(worker.wait(), self.stop_grace)

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


@dataclass(frozen=True)
class KernelChoice:
    """A kernel a run may name, as a form offers it."""

    name: str
    display_name: str
    language: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "display_name": self.display_name, "language": self.language}


def installed_kernels() -> dict[str, KernelChoice]:
    """The kernels installed where the hub looks, by name (blocking: it reads kernelspec
    folders). A folder whose ``kernel.json`` cannot be read is left out, as jupyter_client
    leaves it out when it starts a kernel."""
    found = sorted(KernelSpecManager().get_all_specs().items())
    return {
        name: KernelChoice(
            name, spec["spec"].get("display_name") or name, spec["spec"].get("language", "")
        )
        for name, spec in found
    }


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
