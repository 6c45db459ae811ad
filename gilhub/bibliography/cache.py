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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.log import app_log

from gilhub.bibliography.library import (
    BibEntry,
    ParsedLibrary,
    Problem,
    StringMacro,
    decode_bibtex,
)

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
                    text(
                        "SELECT payload FROM bibliography.parsed"
                        " WHERE file_sha256 = :sha256 AND parser = :parser"
                    ),
                    {"sha256": sha256, "parser": PARSER},
                )
        except Exception:  # the cache is an optimisation; the file can always be parsed
            app_log.exception("could not read the bibliography cache")
            return None
        if blob is None:
            return None
        return await asyncio.to_thread(restore, bytes(blob), data, sha256)

    async def store(self, parsed: ParsedLibrary) -> None:
        blob = await asyncio.to_thread(dump, parsed)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO bibliography.parsed (file_sha256, parser, payload)"
                        " VALUES (:sha256, :parser, :payload)"
                        " ON CONFLICT (file_sha256, parser) DO UPDATE SET created = now()"
                    ),
                    {"sha256": parsed.sha256, "parser": PARSER, "payload": blob},
                )
                await conn.execute(
                    text(
                        "DELETE FROM bibliography.parsed WHERE (file_sha256, parser) NOT IN"
                        " (SELECT file_sha256, parser FROM bibliography.parsed"
                        "  ORDER BY created DESC LIMIT :keep)"
                    ),
                    {"keep": KEEP},
                )
        except Exception:
            app_log.exception("could not store the parsed bibliography")
