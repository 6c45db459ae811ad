"""The lab bibliography as the hub holds it: which file, its parse cache, its writer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from gilhub.bibliography.cache import PostgresParseCache
from gilhub.bibliography.library import Bibliography
from gilhub.bibliography.writer import BibWriter

if TYPE_CHECKING:
    from gilhub.app import GilHub


class LabBibliography(LoggingConfigurable):
    """The lab bibliography: ``c.LabBibliography.path`` in gilhub_config.py chooses the file.

    The hub builds one when it starts (``hub.bibliography``), so that all its pages
    share one parse cache and one writer lock; the ``gilhub bib`` commands build
    their own. ``file`` is the parsed file, ``writer`` adds to it.
    """

    path = Unicode(
        "bibliography.bib",
        config=True,
        help="The lab's BibTeX file. Relative paths are relative to the hub's data directory. "
        "The file stays the source of truth: edit it by hand or in git, the hub notices.",
    )

    def __init__(self, *, data_dir: Path, engine: AsyncEngine | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        path = Path(self.path).expanduser()
        cache = PostgresParseCache(engine) if engine is not None else None
        self.data_dir = data_dir
        self.file = Bibliography(path if path.is_absolute() else data_dir / path, cache)
        self.writer = BibWriter(self.file, engine)

    def create_if_missing(self) -> None:
        """Start the lab with an empty file, so a fresh hub has a bibliography (empty,
        not missing) that the hub's form and hand edits add to; blocking. An existing
        file is never touched; a folder that does not exist is reported, not made (unless
        it is the hub's data directory)."""
        try:
            if self.file.path.parent == self.data_dir:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            with self.file.path.open("xb"):
                self.log.info("Created the empty lab bibliography %s", self.file.path)
        except FileExistsError:
            pass
        except OSError as error:
            self.log.warning("Cannot create the lab bibliography %s: %s", self.file.path, error)


async def start(hub: GilHub) -> LabBibliography:
    """The hub's bibliography, built once its database is open (the part's start hook)."""
    bibliography = LabBibliography(parent=hub, data_dir=hub.data_dir, engine=hub.db)
    await asyncio.to_thread(bibliography.create_if_missing)
    return bibliography
