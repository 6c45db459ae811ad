"""The hub's bibliography: which file, its parsed cache and its writer, one per hub."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from gilhub.bibliography.library import Bibliography
from gilhub.bibliography.writer import BibWriter

if TYPE_CHECKING:
    from gilhub.app import GilHub


class LabBibliography(LoggingConfigurable):
    """Configuration of the lab bibliography (``c.LabBibliography.path = ...``)."""

    path = Unicode(
        config=True,
        help="The lab's BibTeX file. Relative paths are relative to the hub's data directory. "
        "The file stays the source of truth: edit it by hand or in git, the hub notices.",
    )

    @default("path")
    def _default_path(self) -> str:
        return "bibliography.bib"

    def __init__(self, hub: GilHub, **kwargs: object) -> None:
        super().__init__(parent=hub, **kwargs)
        path = Path(self.path).expanduser()
        if not path.is_absolute():
            path = Path(hub.data_dir) / path
        self.bibliography = Bibliography(path)
        self.writer = BibWriter(self.bibliography, hub.db)


_services: weakref.WeakKeyDictionary[GilHub, LabBibliography] = weakref.WeakKeyDictionary()


def lab_bibliography(hub: GilHub) -> LabBibliography:
    """The hub's one :class:`LabBibliography` (one cache and one writer lock per hub)."""
    service = _services.get(hub)
    if service is None:
        service = _services[hub] = LabBibliography(hub)
    return service
