"""``PostgresContentsManager``: a jupyter_server 2 contents manager over PostgreSQL.

Concurrency: every query runs on SQLAlchemy 2's asyncio engine over psycopg 3,
which speaks asyncio natively, so no database call blocks the server's event
loop and no thread pool is involved in I/O. Only CPU-heavy notebook parsing and
serialisation (nbformat) runs in a worker thread (``asyncio.to_thread``).

Each write is one transaction, so a failure at any point (bad input, size
limit, the database going away) leaves the stored version whole. Behaviour
follows jupyter_server's ``AsyncFileContentsManager`` / ``AsyncLargeFileManager``
except where a database does better: a chunked upload is assembled in the
database and replaces the stored file only when its last chunk arrives, and a
notebook that is not valid nbformat is refused rather than written.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import nbformat
from jupyter_server.services.contents.manager import AsyncContentsManager, copy_pat
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tornado.web import HTTPError
from traitlets import Bool, Float, Int, Unicode, default

from gilhub.contents import paths, query
from gilhub.contents.checkpoints import PostgresCheckpoints
from gilhub.contents.edge import DatabaseUnavailableError, api_path, translate_database_errors
from gilhub.db.engine import create_engine
from gilhub.db.outage import OutageReporter

DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
DEFAULT_UPLOAD_CHUNK_MAX_AGE = 24 * 3600.0
#: The longest pause between two looks for abandoned uploads, in seconds.
MAX_UPLOAD_SWEEP_INTERVAL = 3600.0
HASH_ALGORITHM = "sha256"


def _human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _decode_content(path: str, content: Any, format: str | None) -> bytes:
    """The bytes of a ``file`` model's content, or HTTP 400."""
    if format not in {"text", "base64"}:
        raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")
    if not isinstance(content, str):
        raise HTTPError(400, f"The content of {path!r} must be a string")
    try:
        if format == "text":
            return content.encode("utf-8")
        return base64.b64decode(content.encode("ascii"))
    except (UnicodeError, binascii.Error, ValueError) as error:
        raise HTTPError(400, f"Encoding error saving {path}: {error}") from error


def _serialized_notebook(content: Any) -> tuple[nbformat.NotebookNode, bytes]:
    """The notebook and its bytes if it is valid nbformat, else HTTP 400.

    ``nbformat.writes`` validates while serialising; validating once is what
    keeps saving a large notebook as fast as the file manager.
    """
    if not isinstance(content, dict):
        raise HTTPError(400, "Invalid notebook: the content must be a JSON object")
    validation: dict = {}
    try:
        nb = nbformat.from_dict(content)
        serialized = nbformat.writes(
            nb, version=nbformat.NO_CONVERT, capture_validation_error=validation
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise HTTPError(400, f"Invalid notebook: {error!r}") from error
    if "ValidationError" in validation:
        message = str(validation["ValidationError"]).strip().splitlines()[0]
        raise HTTPError(400, f"Invalid notebook: not valid nbformat: {message}")
    return nb, serialized.encode("utf-8")


def _chunk_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(400, f"Invalid chunk number {value!r}")
    return value


def _parse_notebook(path: str, data: bytes) -> tuple[nbformat.NotebookNode, dict]:
    validation_error: dict = {}
    try:
        nb = nbformat.reads(
            data.decode("utf-8"), as_version=4, capture_validation_error=validation_error
        )
    except Exception as error:  # nbformat raises many kinds on unreadable input
        raise HTTPError(400, f"Unreadable Notebook: {path} {error!r}") from error
    return nb, validation_error


class PostgresContentsManager(AsyncContentsManager):
    """Notebooks and files of one user, stored in PostgreSQL.

    The server connects with its user's own database role (``db_url``), so
    row-level security confines it to that user's rows. There are no OS paths:
    post-save hooks get the API path as ``os_path``.
    """

    db_url = Unicode(
        config=True,
        help="SQLAlchemy/libpq URL of the database, with the user's role and password."
        " Defaults to the environment variable GILHUB_DB_URL.",
    )

    @default("db_url")
    def _db_url_default(self) -> str:
        return os.environ.get("GILHUB_DB_URL", "")

    max_file_size = Int(
        config=True,
        help="Largest file or notebook accepted, in bytes; larger saves get HTTP 413."
        " Defaults to 100 MiB or the environment variable GILHUB_MAX_FILE_SIZE.",
    )

    @default("max_file_size")
    def _max_file_size_default(self) -> int:
        return int(os.environ.get("GILHUB_MAX_FILE_SIZE", DEFAULT_MAX_FILE_SIZE))

    always_delete_dir = Bool(
        True,
        config=True,
        help="Delete non-empty directories with their contents (as the file manager does"
        " when sending to trash). If False, deleting a non-empty directory is refused.",
    )

    pool_size = Int(
        3,
        config=True,
        help="Database connections this server keeps open (as many again may open under"
        " load). Every user server has its own pool, so keep it small: PostgreSQL's"
        " max_connections bounds the sum.",
    )

    upload_chunk_max_age = Float(
        config=True,
        help="Seconds after its last chunk that an unfinished chunked upload is removed"
        " (the stored file is never touched). Defaults to one day or the environment"
        " variable GILHUB_UPLOAD_CHUNK_MAX_AGE (the hub sets it from its own setting).",
    )

    @default("upload_chunk_max_age")
    def _upload_chunk_max_age_default(self) -> float:
        return float(os.environ.get("GILHUB_UPLOAD_CHUNK_MAX_AGE", DEFAULT_UPLOAD_CHUNK_MAX_AGE))

    @default("root_dir")
    def _root_dir_default(self) -> str:
        # The folder the storage's root stands for: the server's, where kernels start (as
        # FileContentsManager has it). Notebook 7 writes the server's preferred folder into
        # its pages relative to this one; with "/" it sent the file browser to
        # /home/NAME, a folder the storage does not have (404).
        return self.parent.root_dir if self.parent is not None else "/"

    @default("files_handler_params")
    def _files_handler_params_default(self) -> dict:
        # jupyter_server's FilesHandler serves /files/ through this manager but
        # derives from StaticFileHandler, whose initialize() insists on a root
        # directory; it never reads from it.
        return {"path": ""}

    @default("checkpoints_class")
    def _checkpoints_class_default(self) -> type:
        return PostgresCheckpoints

    _engine: AsyncEngine | None = None
    _owner: str | None = None
    _upload_sweeper: asyncio.Task[None] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Logs once when the database stops answering and once when it is back.
        self.outage = OutageReporter(self.log, "notebook database")

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            if not self.db_url:
                raise HTTPError(503, "the notebook database is not configured (GILHUB_DB_URL)")
            self._engine = create_engine(self.db_url, pool_size=self.pool_size)
            self.outage.watch(self._engine)
        return self._engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, str]]:
        """One transaction and the role whose rows it sees; database failures become 503."""
        self._start_upload_sweeper()
        async with translate_database_errors(self.outage), self.engine.begin() as conn:
            if self._owner is None:
                self._owner = (await conn.execute(text("SELECT current_user"))).scalar_one()
            yield conn, self._owner

    async def close(self) -> None:
        if self._upload_sweeper is not None:
            self._upload_sweeper.cancel()
            self._upload_sweeper = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- abandoned uploads ------------------------------------------------------

    def _start_upload_sweeper(self) -> None:
        """On first use (the server's loop is running then): sweep abandoned uploads."""
        if self._upload_sweeper is None:
            self._upload_sweeper = asyncio.create_task(self._sweep_abandoned_uploads())

    async def _sweep_abandoned_uploads(self) -> None:
        interval = min(self.upload_chunk_max_age / 2, MAX_UPLOAD_SWEEP_INTERVAL)
        while True:
            try:
                async with self.transaction() as (conn, owner):
                    removed = await query.discard_abandoned_uploads(
                        conn, self.upload_chunk_max_age, owner
                    )
                if removed:
                    self.log.info("Removed %d chunks of abandoned uploads", removed)
            except DatabaseUnavailableError:
                pass  # the outage is logged once, by the transaction
            except Exception:  # a cleanup: never worth stopping the sweeps for
                self.log.exception("Removing abandoned uploads failed")
            await asyncio.sleep(interval)

    def _refuse_hidden(self, *api_paths: str, status: int = 400) -> None:
        if not self.allow_hidden and any(paths.is_hidden(p) for p in api_paths):
            if status == 404:
                raise HTTPError(404, f"file or directory does not exist: {api_paths[0]!r}")
            raise HTTPError(400, f"Cannot create, change or delete hidden path {api_paths[0]!r}")

    def _check_size(self, path: str, size: int) -> None:
        if size > self.max_file_size:
            raise HTTPError(
                413,
                f"{path or 'the file'} is {_human_size(size)}, larger than the"
                f" {_human_size(self.max_file_size)} this server accepts (max_file_size);"
                " nothing was saved",
            )

    # -- existence ------------------------------------------------------------

    async def dir_exists(self, path: str) -> bool:
        path = api_path(path)
        async with self.transaction() as (conn, owner):
            return await query.kind_of(conn, owner, path) == "directory"

    async def file_exists(self, path: str) -> bool:
        path = api_path(path)
        async with self.transaction() as (conn, owner):
            return await query.kind_of(conn, owner, path) == "file"

    async def exists(self, path: str) -> bool:
        path = api_path(path)
        async with self.transaction() as (conn, owner):
            return await query.kind_of(conn, owner, path) is not None

    async def is_hidden(self, path: str) -> bool:
        return paths.is_hidden(path)

    # -- models ---------------------------------------------------------------

    def _base_model(self, path: str, kind: str, created: datetime, modified: datetime) -> dict:
        return {
            "name": paths.split(path)[1],
            "path": path,
            "type": kind,
            "created": created,
            "last_modified": modified,
            "content": None,
            "format": None,
            "mimetype": None,
            "size": None,
            "writable": True,
            "hash": None,
            "hash_algorithm": None,
        }

    def _kind_of_file(self, path: str, requested: str | None) -> str:
        if requested == "notebook" or (requested is None and path.endswith(".ipynb")):
            return "notebook"
        return "file"

    def _entry_model(self, path: str, kind: str, record: Any, size: int | None) -> dict:
        model = self._base_model(path, kind, record.created, record.last_modified)
        model["size"] = size
        if kind == "file":
            model["mimetype"] = mimetypes.guess_type(path)[0]
        return model

    def _file_record_model(
        self, record: query.FileRecord, requested: str | None = None, require_hash: bool = False
    ) -> dict:
        kind = self._kind_of_file(record.path, requested)
        model = self._entry_model(record.path, kind, record, record.size)
        if require_hash:
            model.update(hash=record.sha256, hash_algorithm=HASH_ALGORITHM)
        return model

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict:
        path = api_path(path)
        self._refuse_hidden(path, status=404)
        async with self.transaction() as (conn, owner):
            record = await query.read_file(conn, owner, path, with_content=bool(content))
            if record is None:
                model = await self._directory_model(conn, owner, path, type, content)
        if record is not None:
            if type == "directory":
                raise HTTPError(400, f"{path} is not a directory", reason="bad type")
            model = self._file_record_model(record, type, require_hash)
            if content:
                await self._fill_content(model, record.content or b"", format)
        self.emit(data={"action": "get", "path": path})
        return model

    async def _directory_model(
        self, conn: AsyncConnection, owner: str, path: str, type: str | None, content: bool
    ) -> dict:
        record = await query.read_directory(conn, owner, path)
        if record is None:
            raise HTTPError(404, f"No such file or directory: {path}")
        if type not in (None, "directory"):
            raise HTTPError(400, f"{path} is a directory, not a {type}", reason="bad type")
        model = self._base_model(path, "directory", record.created, record.last_modified)
        if content:
            entries = await query.list_directory(conn, owner, path)
            model["content"] = [
                self._entry_model(
                    entry.path,
                    "directory"
                    if entry.kind == "directory"
                    else self._kind_of_file(entry.path, None),
                    entry,
                    entry.size,
                )
                for entry in entries
                if self._listed(paths.split(entry.path)[1])
            ]
            model["format"] = "json"
        return model

    def _listed(self, name: str) -> bool:
        return self.should_list(name) and (self.allow_hidden or not name.startswith("."))

    async def _fill_content(self, model: dict, data: bytes, format: str | None) -> None:
        if model["type"] == "notebook":
            nb, validation_error = await asyncio.to_thread(_parse_notebook, model["path"], data)
            self.mark_trusted_cells(nb, model["path"])
            model.update(content=nb, format="json")
            self.validate_notebook_model(model, validation_error)
            return
        if format != "base64":
            try:
                model.update(content=data.decode("utf-8"), format="text")
            except UnicodeDecodeError as error:
                if format == "text":
                    raise HTTPError(
                        400, f"{model['path']} is not UTF-8 encoded", reason="bad format"
                    ) from error
        if model["format"] is None:
            model.update(content=base64.encodebytes(data).decode("ascii"), format="base64")
        if model["mimetype"] is None:
            default_mime = {"text": "text/plain", "base64": "application/octet-stream"}
            model["mimetype"] = default_mime[model["format"]]

    # -- saving ---------------------------------------------------------------

    async def save(self, model: dict, path: str = "") -> dict:
        path = api_path(path)
        if model.get("chunk") is not None:
            return await self._save_chunk(model, path, _chunk_number(model["chunk"]))
        self.run_pre_save_hooks(model=model, path=path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if "content" not in model and model["type"] != "directory":
            raise HTTPError(400, "No file content provided")
        self._refuse_hidden(path)
        if not path:
            raise HTTPError(400, "Cannot save over the root directory")
        if model["type"] == "directory":
            saved = await self._save_directory(path)
        elif model["type"] == "notebook":
            saved = await self._save_notebook(path, model["content"])
        elif model["type"] == "file":
            data = _decode_content(path, model["content"], model.get("format"))
            self._check_size(path, len(data))
            saved = self._file_record_model(await self._store(path, data))
        else:
            raise HTTPError(400, f"Unhandled contents type: {model['type']}")
        self.run_post_save_hooks(model=saved, os_path=path)
        self.emit(data={"action": "save", "path": path})
        return saved

    async def _store(self, path: str, data: bytes) -> query.FileRecord:
        async with self.transaction() as (conn, owner):
            await self._require_parent(conn, owner, path)
            return await query.store_file(conn, owner, path, data)

    async def _require_parent(self, conn: AsyncConnection, owner: str, path: str) -> None:
        parent = paths.split(path)[0]
        if await query.kind_of(conn, owner, parent) != "directory":
            raise HTTPError(404, f"No such directory: {parent!r}")

    async def _save_notebook(self, path: str, content: Any) -> dict:
        nb, data = await asyncio.to_thread(_serialized_notebook, content)
        # The notary keeps signatures in SQLite on this thread, so sign here;
        # nbformat 4 keeps no signature in the file, so the bytes stand.
        self.check_and_sign(nb, path)
        self._check_size(path, len(data))
        saved = self._file_record_model(await self._store(path, data), "notebook")
        # Like the file manager: a notebook always has at least one checkpoint.
        if not await self.checkpoints.list_checkpoints(path):
            await self.create_checkpoint(path)
        return saved

    async def _save_directory(self, path: str) -> dict:
        async with self.transaction() as (conn, owner):
            kind = await query.kind_of(conn, owner, path)
            if kind == "file":
                raise HTTPError(400, f"Not a directory: {path}")
            if kind is None:
                await self._require_parent(conn, owner, path)
                await query.make_directories(conn, owner, path)
                await query.touch_directory(conn, owner, paths.split(path)[0])
            record = await query.read_directory(conn, owner, path)
        return self._base_model(path, "directory", record.created, record.last_modified)

    async def _save_chunk(self, model: dict, path: str, chunk: int) -> dict:
        """One chunk of a large upload (JupyterLab: 1, 2, …, then -1 for the last)."""
        if chunk == 1:
            self.run_pre_save_hooks(model=model, path=path)
        if model.get("type") != "file":
            raise HTTPError(
                400, f"File type {model.get('type')!r} is not supported for large file transfer"
            )
        if "content" not in model:
            raise HTTPError(400, "No file content provided")
        if chunk == 0 or chunk < -1:
            raise HTTPError(400, f"Invalid chunk number {chunk}")
        self._refuse_hidden(path)
        data = _decode_content(path, model["content"], model.get("format"))
        async with self.transaction() as (conn, owner):
            received = await self._add_chunk(conn, owner, path, chunk, data)
            within_limit = received <= self.max_file_size
            if chunk == -1 and within_limit:
                record = await query.finish_upload(conn, owner, path)
        self._check_size(path, received)
        if chunk != -1:
            now = datetime.now(timezone.utc)
            saved = self._base_model(path, "file", now, now)
            saved.update(size=received, mimetype=mimetypes.guess_type(path)[0])
            return saved
        saved = self._file_record_model(record)
        self.run_post_save_hooks(model=saved, os_path=path)
        self.emit(data={"action": "save", "path": path})
        return saved

    async def _add_chunk(
        self, conn: AsyncConnection, owner: str, path: str, chunk: int, data: bytes
    ) -> int:
        """Store one chunk in order; return the bytes received so far.

        An upload that outgrows ``max_file_size`` is discarded (the caller
        answers 413); the stored file is untouched either way.
        """
        if chunk == 1:
            await self._require_parent(conn, owner, path)
            if await query.kind_of(conn, owner, path) == "directory":
                raise HTTPError(400, f"{path!r} is a directory, not a file")
            self._check_size(path, len(data))
            await query.start_upload(conn, owner, path, data)
            return len(data)
        last, received = await query.uploaded_so_far(conn, owner, path)
        if last == 0:
            raise HTTPError(400, f"Chunk {chunk} of {path} arrived before chunk 1")
        if chunk not in (-1, last + 1):
            raise HTTPError(
                400,
                f"Chunk {chunk} of {path} arrived out of order (expected chunk {last + 1});"
                " the stored file is unchanged",
            )
        if received + len(data) > self.max_file_size:
            await query.discard_upload(conn, owner, path)
        else:
            await query.add_chunk(conn, owner, path, last + 1, data)
        return received + len(data)

    # -- delete, rename, copy ---------------------------------------------------

    async def delete_file(self, path: str) -> None:
        path = api_path(path)
        self._refuse_hidden(path)
        if not path:
            raise HTTPError(400, "Can't delete root")
        async with self.transaction() as (conn, owner):
            kind = await query.kind_of(conn, owner, path)
            if kind is None:
                raise HTTPError(404, f"File or directory does not exist: {path}")
            if (
                kind == "directory"
                and not self.always_delete_dir
                and await query.has_children(conn, owner, path)
            ):
                raise HTTPError(400, f"Directory {path} not empty")
            await query.delete_tree(conn, owner, path)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        old_path, new_path = api_path(old_path), api_path(new_path)
        if old_path == new_path:
            return
        self._refuse_hidden(old_path, new_path)
        if not old_path or not new_path:
            raise HTTPError(400, "Cannot rename the root directory or rename onto it")
        await self._transfer(query.rename, old_path, new_path)

    async def _transfer(self, operation, source: str, target: str) -> None:
        """Rename or copy ``source`` onto the free name ``target``, in one transaction."""
        if paths.is_within(target, source):
            raise HTTPError(400, f"Cannot move or copy {source} into itself ({target})")
        try:
            async with self.transaction() as (conn, owner):
                if await query.kind_of(conn, owner, source) is None:
                    raise HTTPError(404, f"File or directory does not exist: {source}")
                if await query.kind_of(conn, owner, target) is not None:
                    raise HTTPError(409, f"File already exists: {target}")
                await self._require_parent(conn, owner, target)
                await operation(conn, owner, source, target)
        except IntegrityError as error:
            raise HTTPError(409, f"File already exists: {target}") from error

    async def copy(self, from_path: str, to_path: str | None = None) -> dict:
        """Copy a file or a directory tree inside the database.

        Names follow the file manager: copying into a directory picks
        ``name-Copy1.ext``; a full target path must not exist yet.
        """
        source = api_path(from_path)
        self._refuse_hidden(source, status=404)
        target = None if to_path is None else api_path(to_path)
        source_dir, source_name = paths.split(source)
        if not source or not await self.exists(source):
            raise HTTPError(404, f"No such file or directory: {source}")
        if target is None:
            target = source_dir
        if await self.dir_exists(target):
            name = copy_pat.sub(".", source_name)
            target = "/".join(
                p for p in (target, await self.increment_filename(name, target, "-Copy")) if p
            )
        elif to_path is None:
            raise HTTPError(404, f"No such directory: {target}")
        self._refuse_hidden(target)
        await self._transfer(query.copy_tree, source, target)
        model = await self.get(target, content=False)
        self.emit(data={"action": "copy", "path": target, "source_path": source})
        return model

    def info_string(self) -> str:
        return "Serving notebooks from PostgreSQL"
