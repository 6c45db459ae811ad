"""The lab's BibTeX file, parsed once per version of its content.

The file stays the source of truth: people edit it by hand or in git. A
:class:`Bibliography` checks the file's ``stat`` on each use (cheap) and
re-reads and re-parses it only when that changed *and* the bytes' sha256
differs from the parsed version, so a request never pays for a parse unless
the file really changed.

Nothing is dropped silently: blocks bibtexparser could not parse, duplicate
keys, keys no citation could name, unknown entry types, dangling
``crossref``\\ s and bytes that are not UTF-8 become :class:`Problem`\\ s with
their line numbers, shown on the bibliography page.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import bibtexparser
from bibtexparser import model

if TYPE_CHECKING:
    from gilhub.bibliography.search import SearchIndex

# bibtexparser logs each block it cannot parse; those become Problems (with line numbers,
# shown on the page), so its own warnings would only repeat them in the hub's log.
logging.getLogger("bibtexparser.splitter").addFilter(lambda rec: rec.levelno > logging.WARNING)

#: Keys a citation can name: what pandoc accepts, which BibTeX accepts too.
KEY_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_:.#$%&+?<>~/-]*"
_VALID_KEY = re.compile(rf"{KEY_PATTERN}\Z")
MAX_KEY_LENGTH = 200

KNOWN_ENTRY_TYPES = frozenset(
    # BibTeX
    "article book booklet conference inbook incollection inproceedings manual "
    "mastersthesis misc phdthesis proceedings techreport unpublished "
    # biblatex
    "online electronic www report thesis software dataset collection mvbook "
    "mvcollection mvproceedings bookinbook suppbook suppcollection periodical "
    "patent reference set xdata artifact".split()
)

#: Fields a crossref child inherits from its parent, as BibTeX does it.
_INHERITED_FIELDS = ("booktitle", "editor", "publisher", "address", "year", "series", "volume")


def is_valid_key(key: str) -> bool:
    """True when ``key`` can be written in BibTeX and cited from markdown."""
    return len(key) <= MAX_KEY_LENGTH and _VALID_KEY.match(key) is not None


@dataclass(frozen=True, slots=True)
class BibEntry:
    key: str
    #: lower case, e.g. ``article``
    entry_type: str
    #: field name (lower case) -> value with ``@string`` macros resolved and the
    #: outer braces or quotes removed; LaTeX is kept. Includes what a
    #: ``crossref`` parent lends (see ``inherited``).
    fields: Mapping[str, str]
    #: the entry's text exactly as in the file
    raw: str
    #: 1-based line of the entry's ``@`` in the file
    line: int
    inherited: frozenset[str] = frozenset()

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    #: ``parse-error``, ``duplicate-key``, ``invalid-key``, ``unknown-type``,
    #: ``crossref`` or ``encoding``
    kind: str
    message: str
    key: str | None = None
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class StringMacro:
    """An ``@string`` definition."""

    name: str
    value: str
    raw: str


@dataclass(slots=True)
class ParsedLibrary:
    sha256: str
    entries: dict[str, BibEntry]
    problems: list[Problem]
    #: the decoded text of the file (undecodable bytes replaced)
    text: str
    #: ``@string`` macros by lower-case name (BibTeX ignores their case)
    strings: dict[str, StringMacro] = field(default_factory=dict)
    _index: SearchIndex | None = field(default=None, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def index(self) -> SearchIndex:
        """The search index, built once per parsed version."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    from gilhub.bibliography.search import SearchIndex

                    self._index = SearchIndex(self.entries.values())
        return self._index

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, key: str) -> BibEntry | None:
        return self.entries.get(key)


def empty_library(problem: Problem | None = None) -> ParsedLibrary:
    return ParsedLibrary(
        sha256=hashlib.sha256(b"").hexdigest(),
        entries={},
        problems=[problem] if problem else [],
        text="",
    )


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def decode_bibtex(data: bytes) -> tuple[str, list[Problem]]:
    """Decode the file as UTF-8, reporting (not hiding) each line with bad bytes."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    problems = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            problems.append(
                Problem(
                    line=number,
                    kind="encoding",
                    message=f"bytes that are not UTF-8 at column {error.start + 1} "
                    f"(shown as \N{REPLACEMENT CHARACTER}; the file itself is left as it is)",
                    excerpt=_excerpt(line.decode("utf-8", "replace")),
                )
            )
    return data.decode("utf-8", "replace"), problems


def _field_values(entry: model.Entry) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in entry.fields:
        name = item.key.lower()
        if name not in values:
            values[name] = str(item.value)
    return values


def _entry_problems(entry: model.Entry, line: int) -> list[Problem]:
    problems = []
    if not is_valid_key(entry.key):
        what = (
            f"the key {entry.key!r} has characters a citation cannot name "
            "(spaces, braces, commas, quotes…)"
            if entry.key
            else "the entry has no key"
        )
        problems.append(
            Problem(
                line,
                "invalid-key",
                f"{what}; the entry is listed but cannot be cited",
                key=entry.key,
                excerpt=_excerpt(entry.raw),
            )
        )
    if entry.entry_type.lower() not in KNOWN_ENTRY_TYPES:
        problems.append(
            Problem(
                line,
                "unknown-type",
                f"unknown entry type @{entry.entry_type}; it is shown as a miscellaneous entry",
                key=entry.key,
            )
        )
    return problems


def _failed_block_problem(block: model.Block) -> Problem:
    line = block.start_line + 1
    if isinstance(block, model.DuplicateBlockKeyBlock):
        return Problem(
            line,
            "duplicate-key",
            f"duplicate key {block.key!r}: this later entry is ignored, the first one is used",
            key=block.key,
            excerpt=_excerpt(block.raw),
        )
    error = getattr(block, "error", None)
    reason = getattr(error, "abort_reason", None) or str(error or "")
    message = f"this block could not be parsed: {reason}" if reason else "could not be parsed"
    return Problem(line, "parse-error", message, excerpt=_excerpt(block.raw))


def _with_crossrefs(entries: dict[str, BibEntry], problems: list[Problem]) -> dict[str, BibEntry]:
    resolved = {}
    for key, entry in entries.items():
        parent_key = entry.fields.get("crossref")
        if not parent_key:
            resolved[key] = entry
            continue
        parent = entries.get(parent_key)
        if parent is None:
            problems.append(
                Problem(
                    entry.line, "crossref", f"crossref to missing entry {parent_key!r}", key=key
                )
            )
            resolved[key] = entry
            continue
        lent = {name: parent.fields[name] for name in _INHERITED_FIELDS if name in parent.fields}
        if "booktitle" not in lent and "title" in parent.fields:
            lent["booktitle"] = parent.fields["title"]
        inherited = frozenset(name for name in lent if name not in entry.fields)
        fields = {**entry.fields, **{name: lent[name] for name in inherited}}
        resolved[key] = BibEntry(
            key, entry.entry_type, fields, entry.raw, entry.line, inherited=inherited
        )
    return resolved


def parse_bibliography(data: bytes) -> ParsedLibrary:
    """Parse BibTeX bytes into entries and problems (CPU-bound: run in a thread)."""
    text, problems = decode_bibtex(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        library = bibtexparser.parse_string(text)
    entries: dict[str, BibEntry] = {}
    strings: dict[str, StringMacro] = {}
    for block in library.blocks:
        if isinstance(block, model.String):
            strings.setdefault(block.key.lower(), StringMacro(block.key, block.value, block.raw))
        elif isinstance(block, model.Entry):
            line = block.start_line + 1
            problems.extend(_entry_problems(block, line))
            entries[block.key] = BibEntry(
                key=block.key,
                entry_type=block.entry_type.lower(),
                fields=_field_values(block),
                raw=block.raw,
                line=line,
            )
        elif isinstance(block, (model.ParsingFailedBlock, model.MiddlewareErrorBlock)):
            problems.append(_failed_block_problem(block))
    entries = _with_crossrefs(entries, problems)
    problems.sort(key=lambda problem: problem.line)
    return ParsedLibrary(
        sha256=hashlib.sha256(data).hexdigest(),
        entries=entries,
        problems=problems,
        text=text,
        strings=strings,
    )


_Stamp = tuple[int, int, int]


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class ParseCache(Protocol):
    """Somewhere parsed versions outlive the process (see :mod:`.cache`)."""

    async def load(self, sha256: str, data: bytes) -> ParsedLibrary | None: ...

    async def store(self, parsed: ParsedLibrary) -> None: ...


class Bibliography:
    """One BibTeX file and its parsed form, re-parsed only when its content changes.

    With a ``cache`` (the hub's PostgreSQL), a version parsed once is not parsed again
    after a restart either.
    """

    def __init__(self, path: Path | str, cache: ParseCache | None = None) -> None:
        self.path = Path(path)
        self.cache = cache
        self._parsed: ParsedLibrary | None = None
        self._stamp: _Stamp | None = None
        self._parse_lock = threading.Lock()
        self._load_lock = asyncio.Lock()
        #: how many times the file was really parsed (the cache's witness)
        self.parse_count = 0

    def _fresh(self, stamp: _Stamp | None) -> ParsedLibrary | None:
        return self._parsed if self._parsed is not None and stamp == self._stamp else None

    async def library(self) -> ParsedLibrary:
        """The current parsed library: a stat when nothing changed; otherwise the file is read,
        and parsed (in a thread) unless this content was parsed before."""
        stamp = _stamp(self.path)  # one stat: cheap enough to do on the loop
        fresh = self._fresh(stamp)
        if fresh is not None:
            return fresh
        async with self._load_lock:
            stamp = _stamp(self.path)
            fresh = self._fresh(stamp)
            if fresh is not None:  # loaded meanwhile by whoever held the lock
                return fresh
            data = await asyncio.to_thread(self.read_bytes)
            known = self._unchanged(data, stamp)
            if known is not None:
                return known
            parsed = await self.cache.load(_sha256(data), data) if self.cache else None
            if parsed is None:
                parsed = await asyncio.to_thread(self._parse, data)
                if self.cache:
                    await self.cache.store(parsed)
            return self._adopt(parsed, stamp)

    def library_sync(self) -> ParsedLibrary:
        """Blocking form of :meth:`library` (without the cache), for nbconvert and command
        lines."""
        with self._parse_lock:
            stamp = _stamp(self.path)
            fresh = self._fresh(stamp)
            if fresh is not None:
                return fresh
            data = self.read_bytes()
            known = self._unchanged(data, stamp)
            return known if known is not None else self._adopt(self._parse(data), stamp)

    def _unchanged(self, data: bytes, stamp: _Stamp | None) -> ParsedLibrary | None:
        """The library when the file is missing or its content is the parsed one, else None."""
        if stamp is None:
            missing = f"the bibliography file {self.path.name} does not exist"
            return self._adopt(empty_library(Problem(0, "missing", missing)), stamp)
        if self._parsed is not None and _sha256(data) == self._parsed.sha256:
            return self._adopt(self._parsed, stamp)
        return None

    def _parse(self, data: bytes) -> ParsedLibrary:
        parsed = parse_bibliography(data)
        parsed.index  # noqa: B018 - build the index while still off the loop
        self.parse_count += 1
        return parsed

    def _adopt(self, parsed: ParsedLibrary, stamp: _Stamp | None) -> ParsedLibrary:
        self._parsed, self._stamp = parsed, stamp
        return parsed

    def read_bytes(self) -> bytes:
        """The file's bytes as they are (empty when it does not exist yet); blocking."""
        return read_bytes(self.path)

    def forget(self) -> None:
        """Drop the stamp so the next use re-checks the content (after our own writes)."""
        self._stamp = None


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "BibEntry",
    "Bibliography",
    "KEY_PATTERN",
    "ParseCache",
    "ParsedLibrary",
    "Problem",
    "StringMacro",
    "decode_bibtex",
    "is_valid_key",
    "parse_bibliography",
    "read_bytes",
]
