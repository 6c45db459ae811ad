"""SQLAlchemy Core description of the ``servers`` table.

``sql/001_hub.sql`` creates it and ``sql/007_servers.sql`` shapes it as it is now;
this object only lets :mod:`gilhub.servers.query` build queries without SQL strings.
The foreign key to ``users`` lives in the SQL (joins name their condition).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

servers = Table(
    "servers",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    # a ServerState value other than "stopped" (a stopped server has no row)
    Column("state", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("port", Integer),
    # sha256 of the server's token; the token is HMAC(hub secret, user, token_nonce)
    Column("token_hash", Text),
    Column("token_nonce", Text),
    # whatever the spawner needs to find its server again (opaque to the hub)
    Column("spawner_state", JSONB, nullable=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("last_activity", DateTime(timezone=True), nullable=False),
)
