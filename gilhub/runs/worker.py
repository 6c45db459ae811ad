"""``python -m gilhub.runs.worker RUN_ID``: execute one run's notebook with papermill.

The hub starts this as a process of its own (:func:`gilhub.runs.service.launch_worker`),
never in its event loop nor in the user's server, with limits as arguments and
secrets only in the environment: the run's database URL under
:data:`~gilhub.runs.access.DB_URL_ENV` (removed before the kernel starts) and the
run's token under its configured name (left for the kernel).

**Why the worker writes to PostgreSQL itself** (rather than appending to a file
the hub tails): the worker must reach the database anyway, as its user's own
role, to save the executed notebook in that user's storage; writing progress
and messages through the same connection means they land in the one place the
hub, its API and its pages read, whether or not the hub is running at that
moment, with no file offsets to recover after a restart. Row-level security
(``sql/010_runs.sql``) limits the role to its own runs and to the progress
columns.

papermill runs in a thread (nbclient drives the kernel with an event loop of
its own there); its hooks (:mod:`.engine`) hand events to this process's loop,
where one task writes them to the database in order.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import papermill
import psutil
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbformat import NotebookNode
from papermill.exceptions import PapermillExecutionError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gilhub.contents import query as contents
from gilhub.db import create_engine
from gilhub.db.engine import use_selector_loop_on_windows
from gilhub.runs import query
from gilhub.runs.access import DB_URL_ENV
from gilhub.runs.engine import ENGINE_NAME, ReportingManager
from gilhub.runs.parameters import declared_parameters
from gilhub.runs.query import Run
from gilhub.spawner.process import interrupt, is_windows, process_tree

#: The environment variable carrying the user's database URL (with its password).
#: How long a worker keeps trying to reach a database that went away.
DB_PATIENCE_SECONDS = 600.0
_MODULE_NOTEBOOK = re.compile(r"^(?P<module>.+)/notebooks/(?P<name>[^/]+)$")


def output_path_for(notebook: str, started: datetime) -> str:
    """Where the executed notebook goes: MPPW's ``temp/<module>/notebooks/<name> <time>.ipynb``
    for a notebook in a module's ``notebooks/`` folder, else ``runs/<name> <time>.ipynb``."""
    stamp = started.astimezone(timezone.utc).strftime("%Y-%m-%d %H-%M-%S")
    match = _MODULE_NOTEBOOK.match(notebook)
    folder = f"temp/{match['module']}/notebooks" if match else "runs"
    name = notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")
    return f"{folder}/{name} {stamp}.ipynb"


async def persist(engine: AsyncEngine, write: Callable[..., Awaitable[Any]], *args, **kwargs):
    """``write(conn, *args, **kwargs)`` in a transaction, tried again while the database
    cannot be reached (for up to :data:`DB_PATIENCE_SECONDS`): the run goes on meanwhile,
    and its status is put right when the database is back."""
    deadline = asyncio.get_running_loop().time() + DB_PATIENCE_SECONDS
    delay = 0.5
    while True:
        try:
            async with engine.begin() as conn:
                return await write(conn, *args, **kwargs)
        except (OperationalError, InterfaceError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class DatabaseReport:
    """Receives the engine's events in papermill's thread; writes them in this loop."""

    def __init__(self, engine: AsyncEngine, run: Run) -> None:
        self.engine, self.run = engine, run
        self.manager: ReportingManager | None = None  # set by the engine when it starts
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write_events())

    def progress(self, **values: Any) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, ("progress", values))

    def message(self, level: str, text: str, file: str | None = None) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, ("message", (level, text, file)))

    def printed(self, level: str, text: str) -> None:
        """Printed output of a cell (merged with what follows it while the writer is busy)."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, ("printed", (level, text)))

    async def _write_events(self) -> None:
        while True:
            batch = [await self.events.get()]
            while not self.events.empty():
                batch.append(self.events.get_nowait())
            for event in _merge_printed(batch):
                if event is None:
                    return
                kind, payload = event
                if kind == "progress":
                    await persist(self.engine, query.report_progress, self.run.id, **payload)
                else:
                    await persist(
                        self.engine, query.add_message, self.run.id, self.run.owner, *payload
                    )

    async def drain(self) -> None:
        self.events.put_nowait(None)
        await self.writer


def _merge_printed(batch: list[tuple[str, Any] | None]) -> list[tuple[str, Any] | None]:
    """``batch`` with consecutive printed output of one stream made one message."""
    merged: list[tuple[str, Any] | None] = []
    for event in batch:
        previous = merged[-1] if merged else None
        if event is not None and event[0] == "printed":
            level, text = event[1]
            if previous is not None and previous[0] == "printed" and previous[1][0] == level:
                merged[-1] = ("printed", (level, previous[1][1] + text))
                continue
        merged.append(event)
    return [
        ("message", (event[1][0], event[1][1].rstrip("\n"), None))
        if event is not None and event[0] == "printed"
        else event
        for event in merged
    ]


class PrintedOutput:
    """Where papermill copies what cells print (its ``stdout_file``/``stderr_file``): into
    the run's messages as it comes (stdout as INFO, stderr as WARNING), until ``limit``
    bytes in all; then one WARNING says the rest is only in the executed notebook."""

    def __init__(self, report: DatabaseReport, limit: int) -> None:
        self.report, self.limit, self.left = report, limit, limit

    def stream(self, level: str) -> _PrintedStream:
        return _PrintedStream(self, level)

    def add(self, level: str, text: str) -> None:
        if self.left <= 0:
            return
        data = text.encode("utf-8", errors="replace")
        self.left -= len(data)
        if self.left >= 0:
            self.report.printed(level, text)
            return
        self.report.printed(level, data[: len(data) + self.left].decode("utf-8", "ignore"))
        self.report.message(
            "WARNING",
            f"Printed output beyond {self.limit} bytes is not copied into the messages: "
            "it is in the executed notebook (within the per-cell output limit).",
        )


class _PrintedStream:
    def __init__(self, printed: PrintedOutput, level: str) -> None:
        self.printed, self.level = printed, level

    def write(self, text: str) -> None:
        self.printed.add(self.level, text)

    def flush(self) -> None:
        """Each write is handed on at once."""


def check_parameters(input_path: Path, run: Run, report: DatabaseReport) -> None:
    declared = declared_parameters(input_path)
    if not declared.has_cell:
        report.message(
            "WARNING",
            "The notebook has no cell tagged 'parameters': the parameters are put in a cell "
            "at the top.",
        )
        return
    unknown = sorted(set(run.parameters) - set(declared.parameters))
    if unknown:
        report.message(
            "WARNING",
            f"Unknown parameters (not in the 'parameters' cell): {', '.join(unknown)}.",
        )


def execute(
    notebook: bytes, workdir: Path, run: Run, report: DatabaseReport, limits: argparse.Namespace
) -> None:
    """Check the parameters and execute (in papermill's thread); the executed notebook is
    left in ``workdir/output.ipynb`` even when a cell fails."""
    input_path = workdir / "input.ipynb"
    input_path.write_bytes(notebook)
    check_parameters(input_path, run, report)
    report.message("INFO", f"Executing {run.notebook} with kernel {run.kernel}.")
    printed = PrintedOutput(report, limits.max_streamed_bytes)
    papermill.execute_notebook(
        str(input_path),
        str(workdir / "output.ipynb"),
        parameters=run.parameters,
        engine_name=ENGINE_NAME,
        kernel_name=run.kernel,
        request_save_on_cell_execute=False,
        progress_bar=False,
        cwd=str(input_path.parent),
        execution_timeout=limits.cell_timeout,
        report=report,
        max_output_bytes=limits.max_output_bytes,
        stdout_file=printed.stream("INFO"),
        stderr_file=printed.stream("WARNING"),
    )


def failure(error: BaseException, failed_cell: int | None) -> dict[str, Any]:
    """The run's error columns for ``error`` (raised in cell ``failed_cell`` if known)."""
    if isinstance(error, PapermillExecutionError):
        return {
            "error_cell": failed_cell,
            "error_ename": error.ename,
            "error_evalue": error.evalue,
            "error_traceback": "\n".join(error.traceback),
        }
    if isinstance(error, NoSuchKernel):
        installed = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        evalue = f"No kernel named {error.args[0]!r} is installed (installed: {installed})."
    else:
        evalue = str(error) or type(error).__name__
    return {
        "error_ename": type(error).__name__,
        "error_evalue": evalue,
        "error_traceback": "".join(traceback.format_exception(error)),
    }


async def save_output(engine: AsyncEngine, run: Run, nb: NotebookNode, started: datetime) -> str:
    path = output_path_for(run.notebook, started)
    await persist(engine, _store_output, run, path, nbformat.writes(nb).encode("utf-8"))
    return path


async def _store_output(conn: AsyncConnection, run: Run, path: str, content: bytes) -> None:
    await contents.write_file(conn, run.owner, path, content)
    await query.record_output(conn, run.id, path)


def pass_interrupts_to_the_kernel() -> None:
    """A SIGINT to the worker (a cancelled Slurm job: ``scancel --signal=INT --batch``
    signals the batch script's process, the worker by ``exec``) goes to the processes
    it started instead: the kernel's running cell stops with a KeyboardInterrupt, and the
    worker saves the notebook as far as it ran, as when the hub interrupts a local
    worker's kernel itself (sparing the worker). Without this handler ``asyncio.run``
    would cancel the worker before it saved. (Windows: no SIGINT from outside.)"""
    if is_windows():
        return
    worker = psutil.Process()
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGINT, lambda: interrupt(process_tree(worker)[1:])
    )


async def run_notebook(run_id: int, limits: argparse.Namespace) -> int:
    pass_interrupts_to_the_kernel()
    engine = create_engine(os.environ.pop(DB_URL_ENV), pool_size=1)
    try:
        async with engine.connect() as conn:
            run = await query.get_run(conn, run_id)
            notebook = await query.run_content(conn, run_id)
        report = DatabaseReport(engine, run)
        outcome = await _execute_and_save(engine, run, notebook, report, limits)
        await report.drain()
        await persist(engine, query.finish_run, run.id, **outcome)
        return 0 if outcome["status"] == "completed" else 1
    finally:
        await engine.dispose()


async def _execute_and_save(
    engine: AsyncEngine,
    run: Run,
    notebook: bytes,
    report: DatabaseReport,
    limits: argparse.Namespace,
) -> dict[str, Any]:
    started = run.started or datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="gilhub-run-") as workdir:
        outcome: dict[str, Any] = {"status": "completed"}
        try:
            await asyncio.to_thread(execute, notebook, Path(workdir), run, report, limits)
        except Exception as error:  # every failure of the notebook or its kernel is the run's
            failed_cell = report.manager.failed_cell if report.manager is not None else None
            outcome = {"status": "failed", **failure(error, failed_cell)}
            report.message("ERROR", f"{outcome['error_ename']}: {outcome['error_evalue']}")
        executed = await asyncio.to_thread(
            _executed_notebook, Path(workdir, "output.ipynb"), report
        )
        if executed is None:
            return outcome
        path = await save_output(engine, run, executed, started)
        report.message("INFO", f"Saved the executed notebook as {path}.", path)
        return outcome


def _executed_notebook(output_path: Path, report: DatabaseReport) -> NotebookNode | None:
    """The executed (or partly executed) notebook; ``None`` if execution never began."""
    if output_path.exists():
        return nbformat.read(output_path, as_version=4)
    return report.manager.nb if report.manager is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gilhub.runs.worker")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--cell-timeout", type=int, default=None)
    parser.add_argument("--max-output-bytes", type=int, default=1_000_000)
    parser.add_argument("--max-streamed-bytes", type=int, default=64 * 1024)
    limits = parser.parse_args(argv)
    use_selector_loop_on_windows()
    return asyncio.run(run_notebook(limits.run_id, limits))


if __name__ == "__main__":
    sys.exit(main())
