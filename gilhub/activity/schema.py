"""The activity tables (``sql/008_activity.sql`` is the truth; this mirrors it for queries)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)

metadata = MetaData(schema="activity")


def _cell_columns() -> list[Column]:
    """The columns naming one version of one cell (fresh objects for each table)."""
    return [
        Column("owner", Text, nullable=False),
        Column("path", Text, nullable=False),
        Column("cell_id", Text, nullable=False),
        Column("cell_version", Text, nullable=False),
    ]


cell_versions = Table(
    "cell_versions",
    metadata,
    *_cell_columns(),
    Column("source", Text, nullable=False),
    Column("source_truncated", Boolean, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    *_cell_columns(),
    Column("execution_count", Integer),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True), nullable=False),
    Column("received", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("ename", Text),
    Column("evalue", Text),
    Column("output_hash", Text),
)

notebook_events = Table(
    "notebook_events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("received", DateTime(timezone=True), nullable=False),
)

prompts = Table(
    "prompts",
    metadata,
    Column("id", Uuid, primary_key=True, server_default=func.gen_random_uuid()),
    *_cell_columns(),
    Column("reason", Text, nullable=False),
    Column("asked", DateTime(timezone=True), nullable=False),
    Column("outcome", Text),
    Column("closed", DateTime(timezone=True)),
)

answers = Table(
    "answers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("prompt_id", Uuid, nullable=False),
    *_cell_columns(),
    Column("answer", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("changed", DateTime(timezone=True), nullable=False),
)


def _notebook_set(name: str) -> Table:
    """A set of the user's notebooks, each with the time it joined."""
    return Table(
        name,
        metadata,
        Column("owner", Text, primary_key=True),
        Column("path", Text, primary_key=True),
        Column("since", DateTime(timezone=True), nullable=False),
    )


#: Notebooks the user said not to be asked about.
quiet_notebooks = _notebook_set("quiet_notebooks")
#: Notebooks whose story the user shares with administrators.
shared_notebooks = _notebook_set("shared_notebooks")

#: The tables of what was recorded, and shared (the user's choices are in the others).
RECORD_TABLES = (cell_versions, executions, notebook_events, prompts, answers, shared_notebooks)
#: Every table holding a user's rows.
OWNED_TABLES = (*RECORD_TABLES, settings, quiet_notebooks)
