"""Parsed versions of the bibliography kept in PostgreSQL, so a restart does not parse again.

The file stays the source of truth: a version is found only by the sha256 of the file's
bytes, and only if it was parsed by the same parser (this module's ``FORMAT`` and
bibtexparser's version). The payload is compressed JSON, never pickle: loading it runs no
code. A cache that cannot be reached is logged and skipped; the file is parsed instead.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

import bibtexparser
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.log import app_log

from gilhub.bibliography.library import (
    BibEntry,
    ParsedLibrary,
    Problem,
    StringMacro,
    decode_bibtex,
)
from gilhub.bibliography.schema import parsed as parsed_versions

#: Bump when parsing or the payload changes meaning.
FORMAT = 1
PARSER = f"{FORMAT}/bibtexparser-{bibtexparser.__version__}"
#: Versions kept (the current one and a few before it, e.g. for a git checkout back and forth).
KEEP = 3


def dump(parsed: ParsedLibrary) -> bytes:
    payload = {
        "entries": [
            [e.key, e.entry_type, dict(e.fields), e.raw, e.line, sorted(e.inherited)]
            for e in parsed.entries.values()
        ],
        "problems": [[p.line, p.kind, p.message, p.key, p.excerpt] for p in parsed.problems],
        "strings": [[m.name, m.value, m.raw] for m in parsed.strings.values()],
    }
    return zlib.compress(json.dumps(payload, ensure_ascii=False).encode("utf-8"), 1)


def restore(blob: bytes, data: bytes, sha256: str) -> ParsedLibrary:
    """The parsed library from ``dump``, for the file bytes ``data`` (index built)."""
    payload: dict[str, Any] = json.loads(zlib.decompress(blob))
    entries = {
        key: BibEntry(key, entry_type, fields, raw, line, frozenset(inherited))
        for key, entry_type, fields, raw, line, inherited in payload["entries"]
    }
    parsed = ParsedLibrary(
        sha256=sha256,
        entries=entries,
        problems=[Problem(*problem) for problem in payload["problems"]],
        text=decode_bibtex(data)[0],
        strings={
            name.lower(): StringMacro(name, value, raw) for name, value, raw in payload["strings"]
        },
    )
    parsed.index  # noqa: B018 - built here, in the worker thread
    return parsed


class PostgresParseCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def load(self, sha256: str, data: bytes) -> ParsedLibrary | None:
        try:
            async with self.engine.connect() as conn:
                blob = await conn.scalar(
                    select(parsed_versions.c.payload).where(
                        parsed_versions.c.file_sha256 == sha256, parsed_versions.c.parser == PARSER
                    )
                )
        except Exception:  # the cache is an optimisation; the file can always be parsed
            app_log.exception("could not read the bibliography cache")
            return None
        if blob is None:
            return None
        return await asyncio.to_thread(restore, bytes(blob), data, sha256)

    async def store(self, library: ParsedLibrary) -> None:
        blob = await asyncio.to_thread(dump, library)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(parsed_versions)
                    .values(file_sha256=library.sha256, parser=PARSER, payload=blob)
                    .on_conflict_do_update(
                        index_elements=[parsed_versions.c.file_sha256, parsed_versions.c.parser],
                        set_={"created": func.now()},
                    )
                )
                key = (parsed_versions.c.file_sha256, parsed_versions.c.parser)
                newest = select(*key).order_by(parsed_versions.c.created.desc()).limit(KEEP)
                await conn.execute(delete(parsed_versions).where(tuple_(*key).not_in(newest)))
        except Exception:
            app_log.exception("could not store the parsed bibliography")
