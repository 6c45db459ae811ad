"""The runs tables (``sql/010_runs.sql`` is the truth; this mirrors it for queries)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="runs")

runs = Table(
    "runs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("owner", Text, nullable=False),
    Column("notebook", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("version", Integer),
    Column("content", LargeBinary, nullable=False),
    Column("parameters", JSONB, nullable=False),
    Column("kernel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("cells_done", Integer, nullable=False),
    Column("cells_total", Integer, nullable=False),
    Column("current_cell", Integer),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("started", DateTime(timezone=True)),
    Column("ended", DateTime(timezone=True)),
    Column("error_cell", Integer),
    Column("error_ename", Text),
    Column("error_evalue", Text),
    Column("error_traceback", Text),
    Column("output_path", Text),
    Column("worker", JSONB),
    Column("token_id", BigInteger),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("run_id", BigInteger, ForeignKey(runs.c.id), nullable=False),
    Column("owner", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("level", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("file", Text),
)

#: Run definitions (``sql/009_run_definitions.sql``: a schema of their own, see there).
schedules_metadata = MetaData(schema="schedules")

definitions = Table(
    "definitions",
    schedules_metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("notebook", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("version", Integer),
    Column("parameters", JSONB, nullable=False),
    Column("kernel", Text, nullable=False),
    Column("schedule", Text),
    Column("timezone", Text, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("keep_runs", Integer, nullable=False),
    Column("next_run", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created", DateTime(timezone=True), nullable=False),
)

definition_runs = Table(
    "definition_runs",
    schedules_metadata,
    Column("run_id", BigInteger, primary_key=True),
    Column("definition_id", BigInteger, ForeignKey(definitions.c.id), nullable=False),
)
