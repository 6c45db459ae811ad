"""Repository and storage paths: relative, ``/``-separated, never escaping.

Every path that comes from a request goes through :func:`normalize_path`
before it reaches a query, so ``..``, absolute paths (POSIX or Windows), NUL
and other control characters, backslashes and over-long paths are refused
with a clear message instead of being interpreted.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from gilhub.repository.errors import BadRequest

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_path(path: str, *, what: str = "path") -> str:
    """Return ``path`` as a clean relative path, or raise :class:`BadRequest`."""
    if not isinstance(path, str) or not path.strip():
        raise BadRequest(f"the {what} is empty")
    if _CONTROL.search(path):
        raise BadRequest(f"the {what} contains a control character (NUL, newline, ...)")
    if "\\" in path:
        raise BadRequest(f"the {what} contains a backslash; use / between folders")
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        raise BadRequest(f"the {what} must be relative, not absolute: {path!r}")
    if len(path) > MAX_PATH_LENGTH:
        raise BadRequest(f"the {what} is longer than {MAX_PATH_LENGTH} characters")
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise BadRequest(f"the {what} {path!r} has an empty, '.' or '..' part")
        if segment != segment.strip():
            raise BadRequest(f"the {what} {path!r} has a part that starts or ends with a space")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise BadRequest(f"a part of the {what} is longer than {MAX_SEGMENT_LENGTH} characters")
    return path


def normalize_prefix(prefix: str) -> str:
    """A folder prefix for browsing: ``""`` for the root, else ``"a/b/"``."""
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    return normalize_path(prefix, what="folder") + "/"


def is_notebook(path: str) -> bool:
    return path.lower().endswith(".ipynb")


def beside_name(path: str, attempt: int) -> str:
    """``a/b.ipynb`` -> ``a/b (2).ipynb``: a name to write beside an existing file."""
    pure = PurePosixPath(path)
    name = f"{pure.stem} ({attempt}){pure.suffix}"
    return str(pure.with_name(name))


def numbered_path(path: str, attempt: int) -> str:
    """``a/b.ipynb`` -> ``a/b-2.ipynb``: a new repository path next to a taken one (no
    spaces or brackets: repository paths end up in URLs and command lines)."""
    pure = PurePosixPath(path)
    return str(pure.with_name(f"{pure.stem}-{attempt}{pure.suffix}"))
