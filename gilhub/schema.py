"""SQLAlchemy Core descriptions of the hub's own tables (each part has its ``schema.py``).

``sql/001_hub.sql`` creates them (the SQL is the truth); these objects let the
query functions (:mod:`gilhub.users`, :mod:`gilhub.auth.sessions`,
:mod:`gilhub.auth.tokens`, :mod:`gilhub.auth.secrets_store`) be written with
SQLAlchemy Core instead of SQL strings.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False),
    Column("password_hash", Text),
    Column("db_role", Text),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_activity", DateTime(timezone=True)),
    Column("must_change_password", Boolean, nullable=False),
    Column("interface", Text),
)

login_sessions = Table(
    "login_sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", Text, nullable=False),  # "user:NAME@ADDRESS" or "addr:ADDRESS"
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_used", DateTime(timezone=True)),
    Column("expires", DateTime(timezone=True)),
)

hub_secrets = Table(
    "hub_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
