"""``PostgresCheckpoints``: bounded, server-side checkpoints for ``PostgresContentsManager``.

A checkpoint is a copy of a file row's content made inside the database
(``INSERT … SELECT``), tied to the file row: it follows the file through a
rename and is deleted with it, so the rename/delete hooks have nothing to do.
Only the ``max_checkpoints`` newest are kept per file. These checkpoints work
only with ``PostgresContentsManager`` (their ``parent``), whose transactions
they use.
"""

from __future__ import annotations

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from tornado.web import HTTPError
from traitlets import Int

from gilhub.contents import query
from gilhub.contents.edge import api_path


def _checkpoint_model(record: query.CheckpointRecord) -> dict:
    return {"id": str(record.id), "last_modified": record.created}


def _checkpoint_number(checkpoint_id: str, path: str) -> int:
    try:
        return int(checkpoint_id)
    except (TypeError, ValueError):
        raise HTTPError(404, f"Checkpoint does not exist: {path}@{checkpoint_id}") from None


class PostgresCheckpoints(AsyncCheckpoints):
    max_checkpoints = Int(5, config=True, help="Checkpoints kept per file; the oldest go first.")

    @property
    def _manager(self):
        return self.parent

    async def create_checkpoint(self, contents_mgr, path: str) -> dict:
        path = api_path(path)
        async with self._manager.transaction() as (conn, owner):
            record = await query.create_checkpoint(
                conn, owner, path, keep=max(self.max_checkpoints, 1)
            )
        if record is None:
            raise HTTPError(404, f"No such file: {path}")
        return _checkpoint_model(record)

    async def restore_checkpoint(self, contents_mgr, checkpoint_id: str, path: str) -> None:
        path = api_path(path)
        number = _checkpoint_number(checkpoint_id, path)
        async with self._manager.transaction() as (conn, owner):
            if not await query.restore_checkpoint(conn, owner, path, number):
                raise HTTPError(404, f"Checkpoint does not exist: {path}@{checkpoint_id}")

    async def list_checkpoints(self, path: str) -> list[dict]:
        path = api_path(path)
        async with self._manager.transaction() as (conn, owner):
            records = await query.list_checkpoints(conn, owner, path)
        return [_checkpoint_model(record) for record in records]

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        path = api_path(path)
        number = _checkpoint_number(checkpoint_id, path)
        async with self._manager.transaction() as (conn, owner):
            if not await query.delete_checkpoint(conn, owner, path, number):
                raise HTTPError(404, f"Checkpoint does not exist: {path}@{checkpoint_id}")

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        """Nothing to do: checkpoints belong to the file row, which was renamed."""

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        """Nothing to do: checkpoints belong to the file row, which was renamed."""

    async def delete_all_checkpoints(self, path: str) -> None:
        """Nothing to do: deleting the file row deleted its checkpoints."""
