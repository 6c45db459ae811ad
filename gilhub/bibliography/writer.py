"""Adding entries to the BibTeX file without ever clobbering anyone's edits.

Every write:

- is checked first: the new BibTeX must parse cleanly, keys must be valid and
  new (a key already in the file, compared without case as BibTeX does, is a
  *duplicate*: reported, and replaced only when the caller names it in
  ``replace``, which the pages do only after asking);
- runs under an in-process :class:`asyncio.Lock` *and* a cross-process lock
  file (:mod:`filelock`, which works on Windows too), so two people adding at
  the same moment both get their entry in;
- re-reads the file inside the lock and only appends to its bytes (or swaps
  one confirmed entry's text), so the file's text, order, comments and even
  bytes that are not UTF-8 are kept;
- writes a temporary file beside the original and ``os.replace``\\ s it; if the
  file changed since it was read (someone saved it in an editor meanwhile),
  the write starts over from the new content instead of losing the edit;
- is recorded in ``bibliography.changes`` (who, what, when).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import AsyncFileLock
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.log import app_log

from gilhub.bibliography.format import doi_url, safe_url
from gilhub.bibliography.library import (
    BibEntry,
    Bibliography,
    ParsedLibrary,
    StringMacro,
    is_valid_key,
    parse_bibliography,
    read_bytes,
)
from gilhub.bibliography.schema import changes
from gilhub.users import User

MAX_INPUT_BYTES = 10 * 1024 * 1024
_WRITE_ATTEMPTS = 5
_SOURCES = ("form", "paste", "upload", "api", "cli")

#: Fields the one-entry form offers, in the order they are written.
FORM_FIELDS = (
    "author",
    "editor",
    "title",
    "journal",
    "booktitle",
    "year",
    "volume",
    "number",
    "pages",
    "publisher",
    "address",
    "edition",
    "school",
    "institution",
    "howpublished",
    "doi",
    "url",
    "note",
)
#: Per entry type, the fields it must have ("a|b": one of them) and those it may have, after
#: BibTeX's standard styles (btxdoc) and biblatex's @online; doi, url and note fit every type.
ENTRY_TYPE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "article": (("author", "title", "journal", "year"), ("volume", "number", "pages")),
    "book": (
        ("author|editor", "title", "publisher", "year"),
        ("volume", "number", "address", "edition"),
    ),
    "inproceedings": (
        ("author", "title", "booktitle", "year"),
        ("editor", "volume", "number", "pages", "address", "publisher"),
    ),
    "incollection": (
        ("author", "title", "booktitle", "year"),
        ("editor", "volume", "number", "pages", "address", "edition", "publisher"),
    ),
    "phdthesis": (("author", "title", "school", "year"), ("address",)),
    "mastersthesis": (("author", "title", "school", "year"), ("address",)),
    "techreport": (("author", "title", "institution", "year"), ("number", "address")),
    "misc": (("title",), ("author", "howpublished", "year")),
    "online": (("title", "url"), ("author", "editor", "year")),
}
_ANY_TYPE_FIELDS = ("doi", "url", "note")
FORM_ENTRY_TYPES = tuple(ENTRY_TYPE_FIELDS)


def required_fields(entry_type: str) -> tuple[str, ...]:
    return ENTRY_TYPE_FIELDS.get(entry_type, ((), ()))[0]


def form_type_fields() -> dict[str, dict[str, Any]]:
    """For the one-entry form, per type: the fields shown, those required on their own, and
    for fields of which one of several is required, which ("author or editor")."""
    described = {}
    for entry_type, (required, optional) in ENTRY_TYPE_FIELDS.items():
        names = {name for group in required for name in group.split("|")}
        names.update(optional, _ANY_TYPE_FIELDS)
        groups = [group.split("|") for group in required]
        described[entry_type] = {
            "shown": [name for name in FORM_FIELDS if name in names],
            "required": [group[0] for group in groups if len(group) == 1],
            "one_of": {
                name: " or ".join(group) for group in groups if len(group) > 1 for name in group
            },
        }
    return described


class BibInputError(ValueError):
    """The submitted BibTeX or form is not acceptable; ``errors`` say why, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Duplicate:
    key: str
    #: the key as it is in the file (may differ in case)
    existing_key: str
    existing_bibtex: str
    new_bibtex: str
    #: True when the new entry is the same as the one in the file (nothing to do)
    identical: bool


@dataclass(slots=True)
class MergeResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    #: entries whose key is taken and that were not replaced (ask the user)
    duplicates: list[Duplicate] = field(default_factory=list)
    #: already present, the same: skipped
    unchanged: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Duplicate]:
        return [duplicate for duplicate in self.duplicates if not duplicate.identical]

    def summary(self, max_keys: int = 20) -> dict[str, Any]:
        """A merge without conflicts as the page after it shows it, in JSON and bounded: at
        most ``max_keys`` keys of each kind, and how many more there are."""
        summary: dict[str, Any] = {"conflicts": []}
        for kind, keys in (
            ("added", self.added), ("replaced", self.replaced), ("unchanged", self.unchanged)
        ):  # fmt: skip
            summary[kind] = keys[:max_keys]
            summary[f"{kind}_more"] = max(len(keys) - max_keys, 0)
        return summary


def _balanced(value: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", value):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _check_form_value(name: str, value: str) -> list[str]:
    errors = []
    if not _balanced(value):
        errors.append(f"{name}: the braces {{ }} are not balanced")
    if name == "year" and not re.fullmatch(r"\d{4}", value):
        errors.append("year: four digits, e.g. 1905")
    if name == "doi" and doi_url(value) is None:
        errors.append("doi: a DOI looks like 10.1000/xyz123")
    if name == "url" and safe_url(value) is None:
        errors.append("url: only http:// and https:// addresses are accepted")
    return errors


def entry_from_form(form: Mapping[str, str]) -> str:
    """BibTeX for one entry from the form's fields; raises BibInputError listing every problem.

    Values are written as given (LaTeX kept), each in braces.
    """
    entry_type = form.get("entry_type", "").strip().lower()
    key = form.get("key", "").strip()
    values = {name: " ".join(form.get(name, "").split()) for name in FORM_FIELDS}
    values = {name: value for name, value in values.items() if value}
    errors = []
    if entry_type not in ENTRY_TYPE_FIELDS:
        errors.append(f"type: choose one of {', '.join(FORM_ENTRY_TYPES)}")
    if not is_valid_key(key):
        errors.append(
            "key: letters, digits and _:.-+/ only, no spaces, braces or commas (e.g. einstein1905)"
        )
    for required in required_fields(entry_type):
        if not any(values.get(name) for name in required.split("|")):
            errors.append(f"{required.replace('|', ' or ')}: required for @{entry_type}")
    for name, value in values.items():
        errors.extend(_check_form_value(name, value))
    if errors:
        raise BibInputError(errors)
    lines = [f"@{entry_type}{{{key},"]
    lines += [f"  {name:<9} = {{{value}}}," for name, value in values.items()]
    return "\n".join(lines) + "\n}\n"


def _check_input(parsed: ParsedLibrary) -> None:
    blocking = [p for p in parsed.problems if p.kind != "crossref"]
    if blocking:
        raise BibInputError([f"line {p.line}: {p.message}" for p in blocking])
    if not parsed.entries:
        raise BibInputError(["no BibTeX entry found (an entry starts with @type{key, …})"])


def parse_input(bibtex: str | bytes) -> ParsedLibrary:
    """Parse submitted BibTeX; raises BibInputError for anything not clean."""
    data = bibtex.encode("utf-8") if isinstance(bibtex, str) else bibtex
    if len(data) > MAX_INPUT_BYTES:
        raise BibInputError([f"the BibTeX is larger than {MAX_INPUT_BYTES // 1024 // 1024} MiB"])
    parsed = parse_bibliography(data)
    _check_input(parsed)
    return parsed


def _same_entry(a: BibEntry, b: BibEntry) -> bool:
    return a.entry_type == b.entry_type and {
        name: " ".join(value.split()) for name, value in a.fields.items()
    } == {name: " ".join(value.split()) for name, value in b.fields.items()}


@dataclass(slots=True)
class _Plan:
    result: MergeResult
    appended: list[BibEntry]
    replacements: list[tuple[BibEntry, BibEntry]]
    #: ``@string`` macros the new entries bring that the file lacks
    strings: list[StringMacro] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.appended or self.replacements)


def _new_strings(current: ParsedLibrary, new: ParsedLibrary) -> list[StringMacro]:
    """The input's ``@string`` macros to add; one the file defines otherwise is an error."""
    added = []
    for name, macro in new.strings.items():
        existing = current.strings.get(name)
        if existing is None:
            added.append(macro)
        elif existing.value != macro.value:
            raise BibInputError(
                [
                    f"@string {macro.name} is {existing.value!r} in the bibliography but "
                    f"{macro.value!r} here: rename it or use the file's value"
                ]
            )
    return added


def _plan(current: ParsedLibrary, new: ParsedLibrary, replace: frozenset[str]) -> _Plan:
    by_folded_key = {key.casefold(): entry for key, entry in current.entries.items()}
    plan = _Plan(MergeResult(), [], [], _new_strings(current, new))
    for entry in new.entries.values():
        existing = by_folded_key.get(entry.key.casefold())
        if existing is None:
            plan.appended.append(entry)
            plan.result.added.append(entry.key)
        elif _same_entry(existing, entry) and existing.key == entry.key:
            plan.result.unchanged.append(entry.key)
        elif entry.key in replace and existing.key == entry.key:
            plan.replacements.append((existing, entry))
            plan.result.replaced.append(entry.key)
        else:
            plan.result.duplicates.append(
                Duplicate(entry.key, existing.key, existing.raw, entry.raw, identical=False)
            )
    return plan


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _apply(data: bytes, current: ParsedLibrary, plan: _Plan) -> bytes:
    if plan.replacements:
        if any(problem.kind == "encoding" for problem in current.problems):
            raise BibInputError(
                ["the file has bytes that are not UTF-8: fix them before replacing entries"]
            )
        content = current.text
        for existing, new in plan.replacements:
            start = content.find(existing.raw, _line_offset(content, existing.line))
            if start < 0:
                raise BibInputError([f"{existing.key}: could not find its text in the file"])
            content = content[:start] + new.raw.strip() + content[start + len(existing.raw) :]
        data = (b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b"") + content.encode()
    blocks = [macro.raw for macro in plan.strings] + [entry.raw for entry in plan.appended]
    if blocks:
        if data and not data.endswith(b"\n"):
            data += b"\n"
        data += "".join(f"\n{block.strip()}\n" for block in blocks).encode("utf-8")
    return data


def _replace_retrying(source: str, target: Path, attempts: int = 20) -> None:
    """``os.replace``, retried for a moment: on Windows it fails while another program
    (an editor, a virus scanner, a sync client) has the file open."""
    for _ in range(attempts - 1):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            time.sleep(0.1)  # in a worker thread, never on the event loop
    os.replace(source, target)


def _replace_file(path: Path, data: bytes, expected_sha256: str) -> bool:
    """Atomically put ``data`` at ``path``, unless the file no longer has ``expected_sha256``.

    Returns False (writing nothing) when someone changed the file since it was read.
    """
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        if hashlib.sha256(read_bytes(path)).hexdigest() != expected_sha256:
            return False
        _replace_retrying(temporary, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


class BibWriter:
    """Writes to one bibliography file; share one instance per file within a process."""

    def __init__(self, bibliography: Bibliography, engine: AsyncEngine | None = None) -> None:
        self.bibliography = bibliography
        self.engine = engine
        self._lock = asyncio.Lock()
        path = bibliography.path
        self._file_lock = AsyncFileLock(path.with_name(f".{path.name}.lock"), timeout=30)

    @property
    def path(self) -> Path:
        return self.bibliography.path

    async def add_from_form(self, form: Mapping[str, str], user: User | None) -> MergeResult:
        """Add one entry from the form; its key must be new."""
        bibtex = entry_from_form(form)
        result = await self.merge(bibtex, user, source="form")
        if result.conflicts or result.unchanged:
            key = result.conflicts[0].existing_key if result.conflicts else result.unchanged[0]
            raise BibInputError([f"key: {key!r} is already in the bibliography; choose another"])
        return result

    async def merge(
        self,
        bibtex: str | bytes,
        user: User | None,
        source: str = "paste",
        replace: frozenset[str] = frozenset(),
    ) -> MergeResult:
        """Add the entries of ``bibtex``; replace an existing one only when its key is in
        ``replace``. Raises BibInputError (writing nothing) for input that is not clean."""
        if source not in _SOURCES:
            raise ValueError(f"unknown source {source!r}")
        new = await asyncio.to_thread(parse_input, bibtex)
        async with self._lock, self._file_lock:
            for _ in range(_WRITE_ATTEMPTS):
                written = await self._try_write(new, replace)
                if written is not None:
                    plan, sha256 = written
                    break
            else:
                raise BibInputError(["the file keeps changing under us; try again in a moment"])
        self.bibliography.forget()
        await self._record(plan, user, source, sha256)
        return plan.result

    async def _try_write(
        self, new: ParsedLibrary, replace: frozenset[str]
    ) -> tuple[_Plan, str] | None:
        """One read-plan-write round; None when the file changed before it could be replaced."""
        data = await asyncio.to_thread(self.bibliography.read_bytes)
        sha256 = hashlib.sha256(data).hexdigest()
        current = await self.bibliography.library()
        if current.sha256 != sha256:
            current = await asyncio.to_thread(parse_bibliography, data)
        plan = _plan(current, new, replace)
        if not plan.writes:
            return plan, sha256
        updated = _apply(data, current, plan)
        if not await self.write_file(updated, sha256):
            return None
        return plan, hashlib.sha256(updated).hexdigest()

    async def write_file(self, data: bytes, expected_sha256: str) -> bool:
        """Replace the file's content (see :func:`_replace_file`)."""
        return await asyncio.to_thread(_replace_file, self.path, data, expected_sha256)

    async def _record(self, plan: _Plan, user: User | None, source: str, sha256: str) -> None:
        rows = [("add", entry) for entry in plan.appended]
        rows += [("replace", new) for _, new in plan.replacements]
        if not rows or self.engine is None:
            return
        params = [
            {
                "user_id": user.id if user else None,
                "user_name": user.name if user else "",
                "action": action,
                "source": source,
                "entry_key": entry.key,
                "entry_type": entry.entry_type,
                "bibtex": entry.raw.strip(),
                "file_name": self.path.name,
                "file_sha256": sha256,
            }
            for action, entry in rows
        ]
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(changes), params)
        except Exception:  # the file is written and is the truth; the record is secondary
            app_log.exception("could not record bibliography changes in the database")


async def recent_changes(
    engine: AsyncEngine, limit: int = 50, key: str | None = None
) -> list[dict[str, object]]:
    """The latest changes made through the hub (to one entry when ``key`` is given), newest
    first."""
    async with engine.connect() as conn:
        statement = (
            select(
                changes.c.at,
                changes.c.user_name,
                changes.c.action,
                changes.c.source,
                changes.c.entry_key,
            )
            .order_by(changes.c.at.desc(), changes.c.id.desc())
            .limit(limit)
        )
        if key is not None:
            statement = statement.where(changes.c.entry_key == key)
        rows = await conn.execute(statement)
        return [dict(row._mapping) for row in rows]


__all__ = [
    "BibInputError",
    "BibWriter",
    "Duplicate",
    "FORM_ENTRY_TYPES",
    "FORM_FIELDS",
    "form_type_fields",
    "MergeResult",
    "entry_from_form",
    "parse_input",
    "recent_changes",
]
