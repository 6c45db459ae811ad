"""SQLAlchemy Core tables mirroring ``sql/004_bibliography.sql`` (the SQL is the truth).

The BibTeX file is the bibliography; these tables only record the changes made
through the hub (:mod:`.writer`) and cache parsed versions of the file (:mod:`.cache`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, MetaData, Table, Text

metadata = MetaData(schema="bibliography")

changes = Table(
    "changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", BigInteger),
    Column("user_name", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("entry_key", Text, nullable=False),
    Column("entry_type", Text, nullable=False),
    Column("bibtex", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", Text, nullable=False),
)

parsed = Table(
    "parsed",
    metadata,
    Column("file_sha256", Text, primary_key=True),
    Column("parser", Text, primary_key=True),
    Column("payload", LargeBinary, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)
