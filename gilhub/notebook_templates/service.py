"""Templates: repository entries under a prefix, and filled copies of them in users' storage.

A template is read from the shared repository at a given version; its
parameters are written into a new code cell tagged ``injected-parameters`` by
papermill's translators (so a JSON ``true`` becomes Python's ``True``, strings
are escaped, other kernels' languages get their own literals), and the copy is
created in the user's storage without ever replacing an existing file.
"""

from __future__ import annotations

import ast
import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import nbformat
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from traitlets import Integer, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from gilhub.contents import query as contents
from gilhub.contents.errors import StorageError
from gilhub.notebook_templates.errors import (
    BadParameters,
    BadTemplate,
    DestinationExists,
    TemplateNotFound,
)
from gilhub.notebook_templates.params import Params, fill_name, filled_file_name, numbered_name
from gilhub.notebook_templates.params import placeholders as check_placeholders
from gilhub.repository import notebooks, store
from gilhub.repository.errors import BadRequest, NotFound
from gilhub.repository.paths import is_notebook, normalize_path, normalize_prefix
from gilhub.users import User

if TYPE_CHECKING:
    from gilhub.app import GilHub

ON_EXISTS = ("new", "open", "fail")
MAX_NUMBERED = 100
MAX_TEMPLATES = 1000
MAX_DESCRIPTION = 500
INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"


class Templates(LoggingConfigurable):
    """Notebook templates (``c.Templates.…`` in gilhub_config.py)."""

    prefix = Unicode(
        "templates/",
        config=True,
        help="Repository folder whose notebooks are templates (their path below it is the "
        "template's path, e.g. templates/some_instrument/data_analysis.ipynb).",
    )
    token_max_age = Integer(
        3600,
        config=True,
        help="Seconds a template link's parameters stay valid while the user logs in and confirms.",
    )

    @validate("prefix")
    def _valid_prefix(self, proposal: Any) -> str:
        try:
            return normalize_prefix(proposal["value"])
        except BadRequest as error:
            raise TraitError(f"Templates.prefix: {error.message}") from None


@dataclass(frozen=True)
class Parameter:
    """A parameter found in the template's ``parameters`` cell by papermill."""

    name: str
    type: str
    default: str  # as written in the cell
    help: str

    @property
    def default_value(self) -> Any:
        """The default as a JSON value when it is a literal (``0.5``, ``"x"``), else its text."""
        try:
            value = _literal(self.default)
            json.dumps(value)
        except (ValueError, TypeError):
            return self.default
        return value


@dataclass(frozen=True)
class Summary:
    """What a template's notebook says about itself."""

    title: str
    description: str
    kernel_name: str
    language: str
    parameters: tuple[Parameter, ...]


@dataclass(frozen=True)
class Template:
    name: str  # the path below the prefix, as in /templates/t/NAME
    entry: store.Entry
    summary: Summary

    @property
    def folder(self) -> str:
        parent = str(PurePosixPath(self.name).parent)
        return "" if parent == "." else parent

    @property
    def version(self) -> int:
        return self.entry.head

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.entry.path,
            "folder": self.folder,
            "version": self.version,
            "title": self.summary.title,
            "description": self.summary.description,
            "language": self.summary.language,
            "parameters": [
                {**vars(parameter), "value": parameter.default_value}
                for parameter in self.summary.parameters
            ],
        }


@dataclass(frozen=True)
class Plan:
    """What confirming a request would do: shown on the confirmation page."""

    template: Template
    version: int
    params: Params
    destination: str
    exists: bool
    alternative: str  # the numbered name a new copy would get when ``exists``


@dataclass(frozen=True)
class Instance:
    path: str
    created: bool  # False when an existing file was opened instead


@dataclass
class TemplateService:
    """Lists templates and instantiates them; built once at the hub's start."""

    engine: AsyncEngine
    config: Templates
    _summaries: dict[tuple[int, int], Summary] = field(default_factory=dict)

    def repository_path(self, name: str) -> str:
        try:
            return normalize_path(self.config.prefix + name, what="template path")
        except BadRequest as error:
            raise BadParameters(error.message) from None

    async def list_templates(self) -> list[Template]:
        async with self.engine.connect() as conn:
            entries = await store.entries_under(
                conn, self.config.prefix, kind="notebook", limit=MAX_TEMPLATES
            )
            return [await self._template(conn, entry) for entry in entries]

    async def get(self, name: str, version: int | None = None) -> tuple[Template, bytes]:
        """The template ``name`` and the content of ``version`` (the newest by default)."""
        path = self.repository_path(name)
        async with self.engine.connect() as conn:
            entry = await store.get_entry(conn, path)
            if entry is None or entry.kind != "notebook":
                raise TemplateNotFound(name)
            try:
                chosen = await store.get_version(conn, entry, version)
            except NotFound as error:
                raise BadParameters(error.message) from None
        assert chosen.content is not None
        summary = await self._summary(entry.id, chosen.number, chosen.content)
        return Template(name, entry, summary), chosen.content

    async def _template(self, conn: AsyncConnection, entry: store.Entry) -> Template:
        """The listed template; one that is not a usable notebook says why instead of failing
        the whole list."""
        name = entry.path[len(self.config.prefix) :]
        summary = self._summaries.get((entry.id, entry.head))
        if summary is None:
            version = await store.get_version(conn, entry)
            assert version.content is not None
            try:
                summary = await self._summary(entry.id, entry.head, version.content)
            except BadTemplate as error:
                summary = Summary(name, error.message, "", "", ())
        return Template(name, entry, summary)

    async def _summary(self, entry_id: int, number: int, content: bytes) -> Summary:
        key = (entry_id, number)
        if key not in self._summaries:
            if len(self._summaries) >= MAX_TEMPLATES:
                self._summaries.clear()
            self._summaries[key] = await asyncio.to_thread(summarize, content)
        return self._summaries[key]

    def destination(self, template: Template, params: Params, destination: str | None) -> str:
        """Where an instance goes: ``destination`` or the template's file name, filled."""
        if destination:
            check_placeholders(destination)
            name = fill_name(destination, params)
        else:
            name = filled_file_name(template.name, params)
        try:
            name = normalize_path(name, what="destination")
        except BadRequest as error:
            raise BadParameters(error.message) from None
        if not is_notebook(name):
            raise BadParameters(f"the destination {name!r} must be a .ipynb file")
        return name

    async def plan(
        self, user: User, name: str, params: Params, destination: str | None = None
    ) -> Plan:
        template, _ = await self.get(name)
        path = self.destination(template, params, destination)
        async with self.engine.connect() as conn:
            exists = await contents.kind_of(conn, _owner(user), path) is not None
            alternative = await _free_name(conn, _owner(user), path) if exists else path
        return Plan(template, template.version, params, path, exists, alternative)

    async def fill(
        self, name: str, params: Params, *, version: int | None = None, referrer: str = ""
    ) -> tuple[Template, bytes]:
        """The template's notebook with ``params`` injected (not stored anywhere)."""
        template, content = await self.get(name, version)
        filled = await asyncio.to_thread(
            inject, content, template, version or template.version, params, referrer
        )
        return template, filled

    async def instantiate(
        self,
        user: User,
        name: str,
        params: Params,
        *,
        version: int | None = None,
        destination: str | None = None,
        on_exists: str = "new",
        referrer: str = "",
    ) -> Instance:
        """Create the filled notebook in ``user``'s storage; never overwrites.

        ``on_exists``: ``"new"`` picks ``name-1.ipynb``, ``name-2.ipynb``…;
        ``"open"`` returns the existing file untouched; ``"fail"`` raises
        :class:`DestinationExists`.
        """
        if on_exists not in ON_EXISTS:
            raise BadParameters(f"on_exists is one of {', '.join(ON_EXISTS)}, not {on_exists!r}")
        owner = _owner(user)
        template, filled = await self.fill(name, params, version=version, referrer=referrer)
        path = self.destination(template, params, destination)
        try:
            return await self._create(owner, path, filled, on_exists)
        except StorageError as error:  # e.g. a file where a folder of the path should be
            raise BadParameters(str(error)) from None

    async def _create(self, owner: str, path: str, filled: bytes, on_exists: str) -> Instance:
        async with self.engine.begin() as conn:
            for candidate in _candidates(path):
                if await contents.create_file(conn, owner, candidate, filled) is not None:
                    return Instance(candidate, created=True)
                if on_exists == "fail":
                    raise DestinationExists(candidate)
                if on_exists == "open" and await contents.kind_of(conn, owner, candidate) == "file":
                    return Instance(candidate, created=False)
        raise DestinationExists(path)


async def start(hub: GilHub) -> TemplateService:
    """The hub's template service (its part's start hook)."""
    assert hub.db is not None
    return TemplateService(engine=hub.db, config=Templates(parent=hub))


def _owner(user: User) -> str:
    if not user.db_role:
        raise BadParameters(f"{user.name} has no notebook storage")
    return user.db_role


def _candidates(path: str) -> list[str]:
    return [path] + [numbered_name(path, number) for number in range(1, MAX_NUMBERED + 1)]


async def _free_name(conn: AsyncConnection, owner: str, path: str) -> str:
    for candidate in _candidates(path)[1:]:
        if await contents.kind_of(conn, owner, candidate) is None:
            return candidate
    raise DestinationExists(path)


# -- notebooks (synchronous: run in a thread) ----------------------------------------
# papermill is imported where it is used: importing it (nbclient, jupyter_client …) takes
# seconds on a busy machine, which neither the hub's start nor ``gilhub --help`` should pay.


def _kernel(notebook: nbformat.NotebookNode) -> tuple[str, str]:
    """The kernel name and language papermill's translators are looked up by."""
    metadata = notebook.get("metadata", {})
    kernelspec = metadata.get("kernelspec", {})
    language = metadata.get("language_info", {}).get("name") or kernelspec.get("language")
    return kernelspec.get("name") or "python3", language or "python"


def tagged_index(notebook: nbformat.NotebookNode, tag: str) -> int:
    """The index of the first cell tagged ``tag``, or -1 (papermill's rule, untagged cells too)."""
    for index, cell in enumerate(notebook.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return index
    return -1


def _parse(content: bytes) -> nbformat.NotebookNode:
    try:
        return notebooks.parse_notebook(content)
    except BadRequest as error:
        raise BadTemplate(f"the template is not a usable notebook: {error.message}") from None


def summarize(content: bytes) -> Summary:
    """Title and description (the first markdown cell) and parameters (papermill's inspection)."""
    from papermill.exceptions import PapermillException
    from papermill.translators import papermill_translators

    notebook = _parse(content)
    kernel_name, language = _kernel(notebook)
    markdown = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    first, _, rest = markdown.strip().partition("\n")
    parameters: tuple[Parameter, ...] = ()
    index = tagged_index(notebook, PARAMETERS_TAG)
    if index >= 0:
        try:
            found = papermill_translators.find_translator(kernel_name, language).inspect(
                notebook.cells[index]
            )
        except (PapermillException, NotImplementedError):
            found = []
        parameters = tuple(
            Parameter(p.name, _type_name(p.inferred_type_name, p.default), p.default, p.help)
            for p in found
        )
    return Summary(
        title=first.lstrip("#").strip(),
        description=rest.strip()[:MAX_DESCRIPTION],
        kernel_name=kernel_name,
        language=language,
        parameters=parameters,
    )


def _literal(text: str) -> Any:
    """The Python literal ``text`` (never evaluating code); ValueError if it is none."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a literal: {text!r}") from error


def _type_name(inferred: str, default: str) -> str:
    """papermill's type (from an annotation), else that of the default when it is a literal."""
    if inferred != "None":
        return inferred
    try:
        return type(_literal(default)).__name__
    except ValueError:
        return "unknown"


def inject(
    content: bytes, template: Template, version: int, params: Params, referrer: str
) -> bytes:
    """The template with an ``injected-parameters`` cell and its origin in the metadata.

    The cell goes after the ``parameters`` cell (replacing an injected cell the
    template may already carry), or at index 1 when there is none.
    """
    from papermill.exceptions import PapermillException
    from papermill.translators import translate_parameters

    notebook = nbformat.v4.upgrade(_parse(content))
    kernel_name, language = _kernel(notebook)
    try:
        source = translate_parameters(kernel_name, language, params, "Parameters")
    except PapermillException as error:
        raise BadTemplate(f"papermill cannot write parameters for this template: {error}") from None
    cell = nbformat.v4.new_code_cell(source=source, metadata={"tags": [INJECTED_TAG]})
    injected = tagged_index(notebook, INJECTED_TAG)
    if injected >= 0:
        notebook.cells[injected] = cell
    else:
        after = tagged_index(notebook, PARAMETERS_TAG)
        position = after + 1 if after >= 0 else min(1, len(notebook.cells))
        notebook.cells.insert(position, cell)
    gilhub = notebook.metadata.setdefault("gilhub", {})
    gilhub["template"] = {
        "path": template.entry.path,
        "version": version,
        "params": params,
        "referrer": referrer,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return notebooks.serialize_notebook(notebook)
