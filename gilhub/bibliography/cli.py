"""``gilhub bib check`` and ``gilhub bib add``: the lab bibliography from the command line.

Same configuration as the hub (``c.LabBibliography.path``, ``--data-dir``, ``--config``).
``check`` only reads the file (handy in a git hook or CI on the lab's bibliography);
``add`` merges a ``.bib`` file exactly as the hub's upload form does, under the same locks.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import List, Unicode
from traitlets.config import Application

from gilhub.bibliography.service import LabBibliography
from gilhub.bibliography.writer import BibInputError
from gilhub.cli import HUB_ALIASES, CommandFailed, HubCommand
from gilhub.users import get_user_by_name


class BibCheckApp(HubCommand):
    name = "bib check"
    description = """List the bibliography's entries count and every problem in the file
    (parse errors, duplicate keys, …) with its line; exit status 1 when there is one."""
    examples = "gilhub bib check"

    def start(self) -> None:  # reads the file only: no database needed
        if self.extra_args:
            self.fail("expected no arguments; see --help")
        bibliography = LabBibliography(parent=self.hub, data_dir=self.hub.data_dir)
        path = bibliography.file.path
        library = bibliography.file.library_sync()
        print(f"{path}: {len(library.entries)} entries, {len(library.problems)} problems")
        for problem in library.problems:
            print(f"{path.name}:{problem.line}: {problem.kind}: {problem.message}")
        if library.problems:
            self.exit(1)


class BibAddApp(HubCommand):
    name = "bib add"
    description = """Merge the entries of a .bib file into the lab bibliography. Keys already
    taken are listed and left alone unless named with --replace."""
    examples = "gilhub bib add new.bib --user alice\ngilhub bib add fixed.bib --replace key1905"
    arguments = ("file",)
    aliases = {**HUB_ALIASES, "user": "BibAddApp.user", "replace": "BibAddApp.replace"}
    user = Unicode("", config=True, help="The gilhub user recorded as having added the entries.")
    replace = List(Unicode(), config=True, help="Keys whose entry in the file may be replaced.")

    async def run(self, engine: AsyncEngine) -> None:
        data = await asyncio.to_thread(Path(self.extra_args[0]).read_bytes)
        user = None
        if self.user:
            async with engine.connect() as conn:
                user = await get_user_by_name(conn, self.user)
            if user is None:
                raise CommandFailed(f"no gilhub user named {self.user!r}")
        bibliography = LabBibliography(parent=self.hub, data_dir=self.hub.data_dir, engine=engine)
        try:
            result = await bibliography.writer.merge(data, user, "cli", frozenset(self.replace))
        except BibInputError as error:
            raise CommandFailed("nothing was written:\n  " + "\n  ".join(error.errors)) from error
        for label, keys in (
            ("added", result.added),
            ("replaced", result.replaced),
            ("unchanged", result.unchanged),
            ("taken (use --replace KEY)", [d.key for d in result.conflicts]),
        ):
            if keys:
                print(f"{label}: {', '.join(keys)}")
        if result.conflicts:
            sys.exit(1)


class BibApp(Application):
    """``gilhub bib``: the parent of ``check`` and ``add`` (alone, it shows its help)."""

    name = "bib"
    description = "Check the lab bibliography or merge a .bib file into it."
    subcommands = {
        name: (f"gilhub.bibliography.cli.{app.__name__}", app.description)
        for name, app in (("check", BibCheckApp), ("add", BibAddApp))
    }

    def start(self) -> None:
        if self.subapp is None:
            self.print_help()
            self.exit(1)
        super().start()
