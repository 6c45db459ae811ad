"""Notebook storage in PostgreSQL for jupyter_server 2 (the pgcontents successor).

Configure a user server with
``--ServerApp.contents_manager_class=gilhub.contents.PostgresContentsManager``
and the environment variable ``GILHUB_DB_URL`` (the user's role, see
:mod:`gilhub.contents.roles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["PostgresCheckpoints", "PostgresContentsManager"]

if TYPE_CHECKING:
    from gilhub.contents.checkpoints import PostgresCheckpoints
    from gilhub.contents.manager import PostgresContentsManager


def __getattr__(name: str):
    # Imported on first use: the hub imports gilhub.contents.roles without
    # needing jupyter_server's contents machinery.
    if name == "PostgresContentsManager":
        from gilhub.contents.manager import PostgresContentsManager

        return PostgresContentsManager
    if name == "PostgresCheckpoints":
        from gilhub.contents.checkpoints import PostgresCheckpoints

        return PostgresCheckpoints
    raise AttributeError(name)
