"""The hub's bibliography: which file (configurable), its parsed cache and its writer."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from gilhub.bibliography.cache import PostgresParseCache
from gilhub.bibliography.library import Bibliography
from gilhub.bibliography.writer import BibWriter

if TYPE_CHECKING:
    from gilhub.app import GilHub


class LabBibliography(LoggingConfigurable):
    """Configuration of the lab bibliography (``c.LabBibliography.path = ...``)."""

    path = Unicode(
        "bibliography.bib",
        config=True,
        help="The lab's BibTeX file. Relative paths are relative to the hub's data directory. "
        "The file stays the source of truth: edit it by hand or in git, the hub notices.",
    )

    @classmethod
    def configured_path(cls, hub: GilHub) -> Path:
        path = Path(cls(parent=hub).path).expanduser()
        return path if path.is_absolute() else Path(hub.data_dir) / path


@dataclass(frozen=True)
class BibService:
    bibliography: Bibliography
    writer: BibWriter


_services: weakref.WeakKeyDictionary[GilHub, BibService] = weakref.WeakKeyDictionary()


def lab_bibliography(hub: GilHub) -> BibService:
    """The hub's one bibliography service (one parse cache and one writer lock per hub)."""
    service = _services.get(hub)
    if service is None:
        path = LabBibliography.configured_path(hub)
        bibliography = Bibliography(path, PostgresParseCache(hub.db))
        service = _services[hub] = BibService(bibliography, BibWriter(bibliography, hub.db))
    return service
