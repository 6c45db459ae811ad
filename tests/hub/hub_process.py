"""``gilhub`` as its own process, with its embedded PostgreSQL, for the fault tests.

Unlike the in-process hub of ``conftest.py`` (which uses the test session's
cluster by URL), this is the hub an operator runs: ``python -m gilhub`` with a
data directory, starting and supervising its own embedded PostgreSQL, that a
test can kill, interrupt and start again. Its output goes to ``hub.log`` in
the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil

from gilhub.db.embedded import postmaster_process

_LISTENING = re.compile(r"is listening on (http://\S+?)/?$", re.MULTILINE)


class HubProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "hub.log"
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    def postmaster(self) -> psutil.Process | None:
        return postmaster_process(self.pgdata)

    def log_text(self, since: int = 0) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[since:]

    def log_size(self) -> int:
        return len(self.log_text())

    async def start(self) -> None:
        """Start ``gilhub --port=0`` and wait until it listens (its URL in :attr:`url`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        since = self.log_size() if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gilhub",
                "--port=0",
                f"--data-dir={self.data_dir}",
                cwd=self.data_dir,
                stdout=log,
                stderr=log,
            )
        async with asyncio.timeout(120):
            while not (found := _LISTENING.search(self.log_text(since))):
                assert self.process.returncode is None, self.log_text(since)
                await asyncio.sleep(0.1)
        self.url = found.group(1)

    async def cli(self, *args: str, stdin: str = "") -> str:
        """Run ``gilhub ARGS`` on the same data directory; its standard output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gilhub",
            *args,
            f"--data-dir={self.data_dir}",
            cwd=self.data_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate(stdin.encode())
        assert process.returncode == 0, stderr.decode()
        return stdout.decode()

    def send(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self) -> int:
        assert self.process is not None
        async with asyncio.timeout(120):
            return await self.process.wait()

    async def stop(self, signum: int = signal.SIGINT) -> None:
        """Send ``signum`` (SIGINT: as Ctrl-C) and wait for the exit; kill after two minutes."""
        if self.process is None or self.process.returncode is not None:
            return
        self.send(signum)
        try:
            await self.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of ``pgdata`` (by its command line) and all its children."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if str(pgdata) in (process.info["cmdline"] or []):
                found += [process, *process.children(recursive=True)]
    return found


@contextlib.asynccontextmanager
async def postgres_held_down(hub: HubProcess) -> AsyncIterator[None]:
    """Kill the hub's PostgreSQL and keep it from starting again until the block ends.

    Without its configuration file PostgreSQL refuses to start, so the hub's
    supervisor keeps retrying (the running server read the file at its start and
    does not miss it); the file is back when the block ends.
    """
    config = hub.pgdata / "postgresql.conf"
    held = config.with_name("postgresql.conf.held")
    postmaster = hub.postmaster()
    assert postmaster is not None
    config.rename(held)
    try:
        postmaster.kill()
        yield
    finally:
        held.rename(config)
