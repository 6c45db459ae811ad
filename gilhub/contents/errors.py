"""The storage's own errors, raised by :mod:`.paths` and :mod:`.query`.

They know nothing of HTTP: :mod:`.edge` turns them into jupyter_server's
``HTTPError`` in the contents manager; the hub's repository maps them itself.
"""

from __future__ import annotations


class StorageError(Exception):
    """A request the storage refuses; the message says why (HTTP 400 at the edge)."""


class InvalidPath(StorageError):
    """A path that could leave the user's tree, or that no file system would accept."""


class WrongKind(StorageError):
    """A file where a directory is needed, or the other way round."""
