"""Benchmark: hubtraf, JupyterHub's own load tester, against gilhub.

Run from the repository root (see bench/README.md)::

    pip install hubtraf        # or: pip install PATH/TO/CHECKOUT of github.com/yuvipanda/hubtraf
    python -m bench.hubtraf_bench                 # 10, then 20 simulated users
    python -m bench.hubtraf_bench --users 10,20,50

hubtraf's ``hubtraf-simulate`` runs, unchanged, against a gilhub hub started for the
benchmark (embedded PostgreSQL in a temporary directory, the default isolation). Each
simulated user logs in through the login form (password ``hello``: hubtraf's own), asks
``GET /hub/spawn`` until it lands in JupyterLab (hubtraf polls at random intervals of up to
30 s, so its server-start durations say more about that polling than about the hub),
starts a kernel, executes ``5 * 4`` over the kernel WebSocket for a few seconds, stops the
kernel and stops the server. The hub URL uses ``localhost``: aiohttp's cookie jar keeps no
cookies from an IP address, so hubtraf cannot log in to ``127.0.0.1``, whatever the hub.

Reported per number of users: hubtraf's final tally (how many ``completed``, or where they
stopped), and the successes, failures and median duration of each of its steps, written to
``bench/results/hubtraf.md``. This is not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.hub_bench import RESULTS_DIR, free_port, hub_process, run_gilhub_cli

#: hubtraf logs in every simulated user with this password.
HUBTRAF_PASSWORD = "hello"
PREFIX = "hubtraf"
HUB_CONFIG = """\
c = get_config()  # noqa
c.Accounts.min_password_length = {length}  # hubtraf's password is {password!r}
c.GilHub.login_max_failures_per_address = 100000  # every simulated user logs in from here
c.LocalProcessSpawner.removed_user_account = "delete"  # the system accounts made as root
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP = re.compile(r"^(Success|Failure): (\S+) (\S+)(.*)$")
_DURATION = re.compile(r"duration:([0-9.]+)")
_TALLY = re.compile(r"^Counter\((.*)\)$")


@dataclass
class Report:
    users: int
    tally: str = ""
    succeeded: collections.Counter = field(default_factory=collections.Counter)
    failed: collections.Counter = field(default_factory=collections.Counter)
    durations: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))

    def read(self, output: str) -> None:
        for line in _ANSI.sub("", output).splitlines():
            if tally := _TALLY.match(line):
                self.tally = tally[1]
            elif step := _STEP.match(line):
                outcome, kind, rest = step[1], step[2], step[4]
                (self.succeeded if outcome == "Success" else self.failed)[kind] += 1
                if outcome == "Success" and (duration := _DURATION.search(rest)):
                    self.durations[kind].append(float(duration[1]))


async def simulate(users: int, work: Path, runtime: tuple[int, int]) -> Report:
    """A fresh hub in ``work``, ``users`` accounts, and one hubtraf run against it."""
    work.mkdir()
    config = HUB_CONFIG.format(length=len(HUBTRAF_PASSWORD), password=HUBTRAF_PASSWORD)
    (work / "gilhub_config.py").write_text(config)
    admin_password = secrets.token_urlsafe(16)
    run_gilhub_cli(
        ["user", "add", "benchadmin", "--admin", "--password-stdin", "--create"],
        work,
        admin_password,
    )
    token = run_gilhub_cli(["token", "benchadmin"], work).strip().splitlines()[-1].strip()
    port = free_port()
    argv = [str(Path(sys.executable).with_name("gilhub")), "--ip=127.0.0.1", f"--port={port}"]
    argv += [f"--data-dir={work}", f"--config={work / 'gilhub_config.py'}"]
    async with hub_process("gilhub", argv, port, token, work, "hub/health") as hub:
        async with httpx.AsyncClient(headers=hub.headers, timeout=60) as admin:
            for number in range(users):
                name = f"{PREFIX}-{number}"
                body = {"password": HUBTRAF_PASSWORD}
                created = await admin.post(f"{hub.hub_url}users/{name}", json=body)
                created.raise_for_status()
        command = [
            str(Path(sys.executable).with_name("hubtraf-simulate")),
            f"http://localhost:{port}",
            str(users),
            f"--user-prefix={PREFIX}",
            "--user-session-max-start-delay=5",
            f"--user-session-min-runtime={runtime[0]}",
            f"--user-session-max-runtime={runtime[1]}",
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=1800, check=False
        )
        (work / "hubtraf.log").write_text(done.stdout + done.stderr)
        report = Report(users)
        report.read(done.stdout)
        async with httpx.AsyncClient(headers=hub.headers, timeout=60) as admin:
            for number in range(users):  # the removal retires the system account too
                await admin.delete(f"{hub.hub_url}users/{PREFIX}-{number}")
        return report


def markdown(reports: list[Report], command: str) -> str:
    kinds = ["login", "server-start", "kernel-start", "code-execute", "kernel-stop", "server-stop"]
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# hubtraf against gilhub",
        "",
        f"Measured {now:%Y-%m-%d %H:%M} UTC on {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, with",
        "",
        f"    {command}",
        "",
        "| users | hubtraf's tally | " + " | ".join(kinds) + " |",
        "| --- | --- | " + " | ".join("---" for _ in kinds) + " |",
    ]
    for report in reports:
        cells = []
        for kind in kinds:
            times = report.durations.get(kind)
            median = f", {statistics.median(times):.2f} s" if times else ""
            failed = f" ({report.failed[kind]} failed)" if report.failed[kind] else ""
            cells.append(f"{report.succeeded[kind]} ok{failed}{median}")
        lines.append(f"| {report.users} | {report.tally} | " + " | ".join(cells) + " |")
    lines += ["", "Each step: successes, failures, median duration (hubtraf's own timing)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="10,20", help="comma-separated numbers of users")
    parser.add_argument("--runtime", default="5,10", help="min,max seconds of code execution")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if shutil.which("hubtraf-simulate", path=str(Path(sys.executable).parent)) is None:
        sys.exit("hubtraf is not installed here: pip install hubtraf")
    low, high = (int(n) for n in args.runtime.split(","))
    reports = []
    work = Path(tempfile.mkdtemp(prefix="gilhub-hubtraf-"))
    try:
        for users in (int(n) for n in args.users.split(",") if n):
            print(f"hubtraf with {users} users …", flush=True)
            reports.append(asyncio.run(simulate(users, work / f"n{users}", (low, high))))
            print(f"  {reports[-1].tally}", flush=True)
    except BaseException:
        print(f"logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    command = "python -m bench.hubtraf_bench " + " ".join(sys.argv[1:])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "hubtraf.md").write_text(markdown(reports, command.strip()))
    print(markdown(reports, command.strip()))


if __name__ == "__main__":
    main()
