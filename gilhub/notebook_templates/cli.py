"""``gilhub template list|new``: the templates of a running hub, from a terminal.

The commands are ``gilhub repo``'s kind (:class:`~gilhub.repository.cli.RepoCommand`):
the hub in ``GILHUB_URL``, a token in ``GILHUB_TOKEN`` or ``~/.gilhub/token``.
"""

from __future__ import annotations

import json
from typing import Any

from traitlets import List, Unicode

from gilhub.repository.cli import CommandError, CommandGroup, RepoCommand


class TemplateCommand(RepoCommand):
    api = "templates/"


class ListCommand(TemplateCommand):
    name = "template list"
    description = "The templates, with their parameters."

    def run(self) -> None:
        templates = self.call("GET", "")["templates"]
        if not templates:
            print("No templates.")
        for template in templates:
            title = f"  {template['title']}" if template["title"] else ""
            print(f"{template['name']}  (version {template['version']}){title}")
            for parameter in template["parameters"]:
                help_text = f"  # {parameter['help']}" if parameter["help"] else ""
                print(
                    f"    {parameter['name']}: {parameter['type']} = {parameter['default']}"
                    f"{help_text}"
                )


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value``: the value as JSON if it reads so (``3``, ``true``, ``[1]``), else text."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise CommandError(f"--param takes key=value, not {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


class NewCommand(TemplateCommand):
    name = "template new"
    description = "Create a notebook in my storage on the hub from a template."
    examples = (
        "gilhub template new some_instrument/data_analysis.ipynb "
        "--param measurement_name=Experiment-12345 --param threshold=0.5"
    )
    arguments = ("path",)
    aliases = {
        **RepoCommand.aliases,
        "param": "NewCommand.params",
        "to": "NewCommand.destination",
        "on-exists": "NewCommand.on_exists",
    }
    params = List(
        Unicode(),
        config=True,
        help="key=value, repeatable; values that read as JSON are JSON (quote text: 'id=\"007\"').",
    )
    destination = Unicode(
        "", config=True, help="Path in my storage (default: the template's file name)."
    )
    on_exists = Unicode(
        "new", config=True, help="If that file exists: new (name-1.ipynb), open, or fail."
    )

    def run(self) -> None:
        body = {
            "template": self.extra_args[0],
            "params": dict(parse_param(text) for text in self.params),
            "destination": self.destination or None,
            "on_exists": self.on_exists,
        }
        answer = self.call("POST", "instantiate", body)
        verb = "Created" if answer["created"] else "You already have"
        print(f"{verb} {answer['path']}; open it at {self.hub_url.rstrip('/')}{answer['url']}")


class TemplateApp(CommandGroup):
    name = "template"
    description = "Use the notebook templates of a running hub."
    subcommands = {
        "list": (ListCommand, ListCommand.description),
        "new": (NewCommand, NewCommand.description),
    }
