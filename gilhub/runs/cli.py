"""``gilhub run NOTEBOOK -p NAME VALUE … [--wait]``: run a notebook of mine on the hub.

The command is ``gilhub repo``'s kind (:class:`~gilhub.repository.cli.RepoCommand`):
the hub in ``GILHUB_URL``, a token in ``GILHUB_TOKEN`` or ``~/.gilhub/token``.
NOTEBOOK is a path in my storage on the hub (or, with ``--source=repository``, a
repository entry). Parameters are given as ``-p NAME VALUE`` or ``-p NAME=VALUE``;
values that read as JSON are JSON (``3``, ``[1, 2]``, ``{"a": 1}``), others text.

With ``--wait`` it follows the run's event stream, printing its status and
messages as they come, and exits 0 when the run completed, 1 when it failed or
was cancelled (or on any error).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from traitlets import Bool, Integer, Unicode

from gilhub.notebook_templates.cli import parse_param
from gilhub.repository.cli import CommandError, RepoCommand

FINISHED = ("completed", "failed", "cancelled")


def split_parameters(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """``argv`` without its ``-p NAME VALUE`` / ``-p NAME=VALUE`` options, and those."""
    rest: list[str] = []
    parameters: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        if arg not in ("-p", "--parameter"):
            rest.append(arg)
            continue
        first = next(args, None)
        if first is None:
            raise CommandError(f"{arg} takes NAME VALUE (or NAME=VALUE)")
        name, _, value = first.partition("=")
        if name.isidentifier() and "=" in first:
            text = first
        else:
            second = next(args, None)
            if second is None:
                raise CommandError(f"{arg} {first}: the value is missing")
            text = f"{first}={second}"
        key, parsed = parse_param(text)
        parameters[key] = parsed
    return rest, parameters


class RunCommand(RepoCommand):
    name = "run"
    description = (
        "Run a notebook of mine on the hub as a job (with --wait: follow it). Parameters: "
        "-p NAME VALUE or -p NAME=VALUE, repeatable; values that read as JSON are JSON."
    )
    examples = "gilhub run mod/notebooks/calc.ipynb -p x 21 -p name '\"alice\"' --wait"
    api = "runs"
    arguments = ("notebook",)
    aliases = {
        **RepoCommand.aliases,
        "kernel": "RunCommand.kernel",
        "source": "RunCommand.source",
        "version": "RunCommand.version",
    }
    flags = {"wait": ({"RunCommand": {"wait": True}}, "Wait for the run and follow it.")}
    kernel = Unicode("", config=True, help="The kernel (default: the hub's).")
    source = Unicode("storage", config=True, help="storage (mine) or repository.")
    version = Integer(0, config=True, help="The repository entry's version (default: newest).")
    wait = Bool(False, config=True, help="Wait for the run, print its messages, exit with it.")

    def parse_command_line(self, argv: list[str] | None = None) -> None:
        try:
            rest, self.parameters = split_parameters(list(argv or []))
        except CommandError as error:
            self.log.error("gilhub run: %s", error)
            self.exit(1)
        super().parse_command_line(rest)

    def run(self) -> None:
        body: dict[str, Any] = {
            "notebook": self.extra_args[0],
            "source": self.source,
            "parameters": self.parameters,
        }
        if self.kernel:
            body["kernel"] = self.kernel
        if self.version:
            body["version"] = self.version
        run = self.call("POST", "", body)
        print(f"Run {run['id']} of {run['notebook']}: {run['status']}")
        print(f"  {self.hub_url.rstrip('/')}/hub/runs/{run['id']}")
        if not self.wait:
            return
        run = self.follow(run)
        if run["status"] != "completed":
            raise CommandError(f"run {run['id']} {run['status']}", exit_status=1)

    def follow(self, run: dict[str, Any]) -> dict[str, Any]:
        """Print the run's status and new messages as they come; the run once it ended."""
        shown_status, shown_messages = run["status"], set()
        for model in self.events(run["id"]):
            for message in model["messages"]:
                if message["id"] not in shown_messages:
                    shown_messages.add(message["id"])
                    print(f"{message['level']:7} {message['text']}", flush=True)
            if model["status"] != shown_status:
                shown_status = model["status"]
                print(f"status: {shown_status} ({model['cells_done']}/{model['cells_total']})")
            run = model
        if run["status"] not in FINISHED:  # the stream ended early: ask once more
            run = self.call("GET", f"/{run['id']}")
        if run.get("error"):
            print(f"ERROR   {run['error']['ename']}: {run['error']['evalue']}")
        if run.get("output_path"):
            print(f"output: {run['output_path']}")
        return run

    def events(self, run_id: int) -> Iterator[dict[str, Any]]:
        """The run's models from its event stream, until it ends."""
        url = f"{self.hub_url.rstrip('/')}/hub/api/runs/{run_id}/events"
        request = Request(url, headers={"Authorization": f"token {self.token()}"})  # noqa: S310
        try:
            with urlopen(request, timeout=self.timeout) as stream:  # noqa: S310
                for line in stream:
                    if line.startswith(b"data: "):
                        yield json.loads(line[len(b"data: ") :])
        except HTTPError as error:
            raise self.http_error(error) from None
        except (URLError, TimeoutError) as error:
            raise CommandError(f"lost the hub at {self.hub_url}: {error}") from None
