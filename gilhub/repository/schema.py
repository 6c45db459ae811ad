"""SQLAlchemy Core tables mirroring ``sql/003_repository.sql`` (the SQL is the truth).

:mod:`gilhub.repository.store` holds the query functions over them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR

metadata = MetaData(schema="repository")

entries = Table(
    "entries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("path", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    Column("head", Integer, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("deleted", DateTime(timezone=True)),
    Column("deleted_by", Text),
    Column("contributors", Text, nullable=False),
    Column("messages", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("search", TSVECTOR),
)

versions = Table(
    "versions",
    metadata,
    Column("entry_id", BigInteger, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("author", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("message", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("label", Text),
)

push_bases = Table(
    "push_bases",
    metadata,
    Column("author", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("entry_id", BigInteger, primary_key=True),
    Column("origin_version", Integer, nullable=False),
    Column("pushed_version", Integer, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entry_id", BigInteger),
    Column("path", Text, nullable=False),
    Column("version", Integer),
    Column("detail", Text, nullable=False),
)
