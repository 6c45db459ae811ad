"""SQLAlchemy Core tables mirroring ``sql/002_contents.sql`` (the SQL is the truth)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

metadata = MetaData(schema="contents")

# ``parent`` is a generated column: read it, never write it.
directories = Table(
    "directories",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("path", Text(collation="C"), primary_key=True),
    Column("parent", Text(collation="C")),
    Column("created", DateTime(timezone=True)),
    Column("last_modified", DateTime(timezone=True)),
)

files = Table(
    "files",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("owner", Text),
    Column("path", Text(collation="C")),
    Column("parent", Text(collation="C")),
    Column("content", LargeBinary),
    Column("size", BigInteger),
    Column("sha256", LargeBinary),
    Column("created", DateTime(timezone=True)),
    Column("last_modified", DateTime(timezone=True)),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("owner", Text),
    Column("file_id", BigInteger),
    Column("content", LargeBinary),
    Column("size", BigInteger),
    Column("sha256", LargeBinary),
    Column("created", DateTime(timezone=True)),
)

upload_chunks = Table(
    "upload_chunks",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("path", Text(collation="C"), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("content", LargeBinary),
    Column("received", DateTime(timezone=True)),
)
