"""``gilhub repo push|pull|log|diff|search``: the repository from a terminal.

The commands talk to a running hub over HTTP, as the user a token belongs
to. The token comes from the environment variable ``GILHUB_TOKEN`` or from a
file (``--token-file``, default ``~/.gilhub/token``), never from the command
line, where other accounts on the machine could read it. Paths given to
``push`` and ``pull`` are paths in the user's notebook storage on the hub.

Exit status: 0 on success, 1 on an error, 2 on a conflict (nothing was
overwritten; the message says what to do).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from traitlets import Bool, Integer, Unicode, default
from traitlets.config import Application

from gilhub import __version__

TOKEN_ENV = "GILHUB_TOKEN"  # noqa: S105 (the variable's name, not a token)
URL_ENV = "GILHUB_URL"
CONFLICT_EXIT = 2


class CommandError(Exception):
    def __init__(self, message: str, exit_status: int = 1, answer: Any = None) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.answer = answer or {}


class RepoCommand(Application):
    """Base of the ``gilhub repo`` commands: where the hub is, and who I am there."""

    version = __version__
    aliases = {"url": "RepoCommand.hub_url", "token-file": "RepoCommand.token_file"}
    #: the part of the hub's API the command talks to, below ``/hub/api/``
    api = "repo/"
    #: positional arguments (names for the usage message)
    arguments: tuple[str, ...] = ()
    #: whether the last argument may be repeated
    repeats_last = False

    hub_url = Unicode(
        config=True, help=f"The hub's address (default: ${URL_ENV} or http://127.0.0.1:8000/)."
    )
    token_file = Unicode(
        config=True, help=f"A file holding an API token, used when ${TOKEN_ENV} is not set."
    )
    timeout = Integer(120, config=True, help="Seconds to wait for the hub.")

    @default("hub_url")
    def _default_hub_url(self) -> str:
        return os.environ.get(URL_ENV, "http://127.0.0.1:8000/")

    @default("token_file")
    def _default_token_file(self) -> str:
        return str(Path.home() / ".gilhub" / "token")

    def token(self) -> str:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if token:
            return token
        path = Path(self.token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CommandError(
                f"no token: set {TOKEN_ENV} or put a token in {path} ({error.strerror})"
            ) from None
        if not token:
            raise CommandError(f"the token file {path} is empty")
        return token

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """One API call; returns the parsed JSON answer or raises :class:`CommandError`."""
        query = {key: value for key, value in (query or {}).items() if value not in (None, "")}
        url = self.hub_url.rstrip("/") + "/hub/api/" + self.api + path
        if query:
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = Request(url, data=data, method=method)  # noqa: S310 (the user's own hub)
        request.add_header("Authorization", f"token {self.token()}")
        request.add_header("Content-Type", "application/json")
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except HTTPError as error:
            raise self.http_error(error) from None
        except URLError as error:
            raise CommandError(f"cannot reach the hub at {self.hub_url}: {error.reason}") from None

    @staticmethod
    def http_error(error: HTTPError) -> CommandError:
        try:
            answer = json.loads(error.read())
        except ValueError:
            answer = {}
        message = answer.get("message") or f"HTTP {error.code} {error.reason}"
        if error.code != 409:
            return CommandError(message)
        lines = [message]
        for version in answer.get("since", []):
            lines.append(
                f"  version {version['number']} by {version['author']} "
                f"({version['created'][:16]}): {version['message']}"
            )
        if answer.get("mergeable"):
            lines.append("The changes merge cleanly: push again with --merge to push the merge.")
        if answer.get("beside"):
            lines.append(f"Use --beside (writes {answer['beside']}) or --overwrite.")
        return CommandError("\n".join(lines), CONFLICT_EXIT, answer)

    def start(self) -> None:
        count = len(self.extra_args)
        wanted = len(self.arguments)
        if count != wanted and not (self.repeats_last and count > wanted):
            shown = " ".join(name.upper() for name in self.arguments) or "no arguments"
            print(f"gilhub {self.name}: expected {shown}; see --help", file=sys.stderr)
            self.exit(1)
        try:
            self.run()
        except CommandError as error:
            print(f"gilhub {self.name}: {error}", file=sys.stderr)
            self.exit(error.exit_status)

    def run(self) -> None:
        raise NotImplementedError


def _entry_path(path: str) -> str:
    return quote(path.strip("/"))


class PushCommand(RepoCommand):
    name = "repo push"
    description = "Push a file from my notebook storage on the hub to the repository."
    examples = "gilhub repo push work/density.ipynb --to plasma/density.ipynb -m 'new fit'"
    arguments = ("source",)
    aliases = {
        **RepoCommand.aliases,
        "to": "PushCommand.target",
        "m": "PushCommand.message",
        "message": "PushCommand.message",
        "base": "PushCommand.base",
        "label": "PushCommand.label",
    }
    flags = {
        "keep-outputs": ({"PushCommand": {"keep_outputs": True}}, "Do not strip outputs."),
        "merge": (
            {"PushCommand": {"merge": True}},
            "On a conflict that nbdime merges cleanly, push the merge (my copy becomes it).",
        ),
    }
    target = Unicode("", config=True, help="Repository path (default: the same as SOURCE).")
    message = Unicode("", config=True, help="What changed.")
    base = Integer(-1, config=True, help="The version my copy started from (default: recorded).")
    label = Unicode("", config=True, help="A label for the new version.")
    keep_outputs = Bool(False, config=True, help="Keep outputs.")
    merge = Bool(False, config=True, help="Push the merge with the newest version.")

    def run(self) -> None:
        body = {
            "source": self.extra_args[0],
            "path": self.target or None,
            "message": self.message,
            "base": None if self.base < 0 else self.base,
        }
        try:
            answer = self.call(
                "POST", "push", {**body, "keep_outputs": self.keep_outputs, "label": self.label}
            )
        except CommandError as error:
            if not (self.merge and error.answer.get("mergeable")):
                raise
            answer = self.call("POST", "merge", {**body, "base": error.answer["base"]})
            print(f"Merged with the changes since version {error.answer['base']}.")
        version = answer["version"]
        if not answer["created"]:
            print(f"{answer['entry']['path']} is unchanged (version {version['number']}).")
            return
        print(f"Pushed {answer['entry']['path']} version {version['number']}.")


class PullCommand(RepoCommand):
    name = "repo pull"
    description = "Pull a repository version (the newest by default) into my storage on the hub."
    examples = "gilhub repo pull plasma/density.ipynb --to mine/density.ipynb --at 3"
    arguments = ("path",)
    aliases = {
        **RepoCommand.aliases,
        "to": "PullCommand.dest",
        "at": "PullCommand.version",
    }
    flags = {
        "beside": (
            {"PullCommand": {"on_exists": "beside"}},
            "If I have the file, write beside it.",
        ),
        "overwrite": ({"PullCommand": {"on_exists": "overwrite"}}, "If I have it, overwrite it."),
    }
    dest = Unicode("", config=True, help="Where in my storage (default: the same path).")
    version = Integer(0, config=True, help="Which version (default: the newest).")
    on_exists = Unicode("fail", config=True, help="fail, beside or overwrite.")

    def run(self) -> None:
        body = {
            "path": self.extra_args[0],
            "dest": self.dest or None,
            "version": self.version or None,
            "on_exists": self.on_exists,
        }
        answer = self.call("POST", "pull", body)
        number = answer["version"]["number"]
        if answer["written"]:
            print(f"Pulled {answer['entry']['path']} version {number} to {answer['path']}.")
        else:
            print(f"{answer['path']} already is version {number}.")


class LogCommand(RepoCommand):
    name = "repo log"
    description = "The history of a repository entry, newest first."
    arguments = ("path",)
    aliases = {**RepoCommand.aliases, "limit": "LogCommand.limit"}
    limit = Integer(50, config=True, help="How many versions.")

    def run(self) -> None:
        answer = self.call(
            "GET", "history/" + _entry_path(self.extra_args[0]), query={"limit": self.limit}
        )
        for version in answer["versions"]:
            label = f" [{version['label']}]" if version["label"] else ""
            print(
                f"{version['number']:>5}{label}  {version['created'][:16]}  "
                f"{version['author']:<16} {version['message']}"
            )


class DiffCommand(RepoCommand):
    name = "repo diff"
    description = "Cell-by-cell differences between two versions (default: the last change)."
    examples = "gilhub repo diff plasma/density.ipynb --from 2 --to 5 --outputs"
    arguments = ("path",)
    aliases = {**RepoCommand.aliases, "from": "DiffCommand.old", "to": "DiffCommand.new"}
    flags = {"outputs": ({"DiffCommand": {"outputs": True}}, "Compare outputs too.")}
    old = Integer(0, config=True, help="The older version.")
    new = Integer(0, config=True, help="The newer version.")
    outputs = Bool(False, config=True, help="Compare outputs too.")

    def run(self) -> None:
        query = {
            "from": self.old or None,
            "to": self.new or None,
            "outputs": "1" if self.outputs else None,
        }
        answer = self.call("GET", "diff/" + _entry_path(self.extra_args[0]), query=query)
        print(f"--- {answer['path']} version {answer['from']}")
        print(f"+++ {answer['path']} version {answer['to']}")
        for number, cell in enumerate(answer["cells"], 1):
            if cell["status"] == "unchanged":
                continue
            print(f"@@ cell {number} ({cell['cell_type']}, {cell['status']})")
            for tag, text in cell["source"] + cell["outputs"]:
                print(f"{tag}{text}")


class SearchCommand(RepoCommand):
    name = "repo search"
    description = "Search paths, messages, authors, tags and cell text."
    examples = 'gilhub repo search langmuir "electron temperature"'
    arguments = ("words",)
    repeats_last = True
    aliases = {**RepoCommand.aliases, "limit": "SearchCommand.limit"}
    limit = Integer(20, config=True, help="How many results.")

    def run(self) -> None:
        words = " ".join(self.extra_args)
        answer = self.call("GET", "search", query={"q": words, "limit": self.limit})
        if not answer["results"]:
            print("No entry matches.")
        for entry in answer["results"]:
            tags = f"  [{' '.join(entry['tags'])}]" if entry["tags"] else ""
            print(f"{entry['path']}  (version {entry['head']}, {entry['author']}){tags}")


class CommandGroup(Application):
    """A ``gilhub`` subcommand made of subcommands (``gilhub repo push``, ``template new``)."""

    version = __version__

    def start(self) -> None:
        if self.subapp is None:
            self.print_subcommands()
            self.exit(1)
        self.subapp.start()


class RepoApp(CommandGroup):
    name = "repo"
    description = "Work with the shared notebook repository of a running hub."
    subcommands = {
        "push": (PushCommand, PushCommand.description),
        "pull": (PullCommand, PullCommand.description),
        "log": (LogCommand, LogCommand.description),
        "diff": (DiffCommand, DiffCommand.description),
        "search": (SearchCommand, SearchCommand.description),
    }
