"""The runs tables (``sql/010_runs.sql`` is the truth; this mirrors it for queries)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
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
    Column("worker_pid", Integer),
    Column("worker_started", Float),
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
