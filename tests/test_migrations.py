"""The schema under sql/ applies cleanly, is versioned and is idempotent."""

from sqlalchemy import text

from gilhub.db import apply_migrations
from gilhub.db.migrate import discover


async def test_every_migration_is_recorded_once(engine):
    versions = [m.version for m in discover()]
    async with engine.connect() as conn:
        recorded = (
            (await conn.execute(text("SELECT version FROM gilhub_migrations ORDER BY 1")))
            .scalars()
            .all()
        )
    assert recorded == versions


async def test_applying_again_changes_nothing(engine):
    assert await apply_migrations(engine) == []


async def test_embedded_cluster_refuses_connections_without_password(postgres):
    import psycopg

    url = postgres.url.set(drivername="postgresql", password="")
    try:
        psycopg.connect(url.render_as_string(hide_password=False)).close()
    except psycopg.OperationalError as exc:
        assert "password" in str(exc).lower()
    else:
        raise AssertionError("the embedded cluster accepted a connection without a password")
