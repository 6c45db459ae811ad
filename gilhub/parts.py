"""How a part of the hub (repository, bibliography, templates, runs, …) plugs in.

Each part is a subpackage that declares, in one :class:`Part` object named
``part`` in its ``__init__.py``, everything the hub needs from it: its routes
(pages and API in separate modules), the link in the page header, its
``gilhub SUBCOMMAND`` command-line tools, its configurable classes (listed by
``gilhub --help-all`` and ``--generate-config``), its SQL migrations and the
service the hub builds once at start. The hub iterates over :data:`PARTS`;
nothing about a part is wired by hand anywhere else (docs/architecture.md has
the checklist for adding one).

Imports are lazy (dotted names, resolved when used) so that ``gilhub user list``
does not import every part's pages.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gilhub.app import GilHub

#: The parts the hub serves, in the order of their navigation links.
PARTS = (
    "gilhub.repository",
    "gilhub.bibliography",
    "gilhub.notebook_templates",
    "gilhub.runs",
    "gilhub.activity",
)


@dataclass(frozen=True)
class NavLink:
    """A link in the page header: ``title`` pointing at ``{hub_prefix}{path}``."""

    title: str
    path: str


@dataclass(frozen=True)
class Part:
    """What one part of the hub contributes.

    ``handlers`` names modules (``"gilhub.repository.pages"``) whose module-level
    ``handlers`` list of Tornado URL specs, with patterns relative to the hub's
    base URL, is served. ``subcommands`` maps a ``gilhub`` subcommand to
    ``(dotted Application class, help)`` as traitlets expects. ``configurables``
    names classes by dotted path. ``migrations`` names the part's files in ``sql/``
    (numbered in one sequence for the whole hub, applied in order with the
    others). ``start`` (optional, dotted path of an async function taking the hub)
    builds the part's service once the database is open; the hub stores what it
    returns as ``hub.<service_attribute>``, a typed attribute the hub declares;
    ``stop`` (optional, same signature) releases it when the hub stops.
    """

    name: str
    handlers: tuple[str, ...] = ()
    nav: NavLink | None = None
    subcommands: dict[str, tuple[str, str]] = field(default_factory=dict)
    configurables: tuple[str, ...] = ()
    migrations: tuple[str, ...] = ()
    start: str | None = None
    stop: str | None = None
    service_attribute: str | None = None

    def handler_specs(self) -> list[tuple]:
        specs: list[tuple] = []
        for module_name in self.handlers:
            specs.extend(importlib.import_module(module_name).handlers)
        return specs

    def configurable_classes(self) -> list[type]:
        return [resolve(name) for name in self.configurables]

    def start_hook(self) -> Callable[[GilHub], Awaitable[Any]] | None:
        return resolve(self.start) if self.start else None

    def stop_hook(self) -> Callable[[GilHub], Awaitable[None]] | None:
        return resolve(self.stop) if self.stop else None


def resolve(dotted: str) -> Any:
    """``"package.module.attribute"`` → the attribute (imported now)."""
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def load_parts() -> list[Part]:
    """Every part's declaration, in :data:`PARTS` order."""
    return [importlib.import_module(name).part for name in PARTS]
