"""Static files found where their route looks, not where another route found a namesake.

jupyter_server's ``FileFindHandler`` serves every static route (JupyterLab's
``/static/lab/``, Notebook 7's ``/static/notebook/``, extensions' folders) and remembers
where it found a file in one cache shared by all of them, keyed by the file's name alone.
JupyterLab and Notebook 7 ship fonts under the same content-hashed names
(``7edea186e9687169.woff2``): once JupyterLab has served one, Notebook 7's route is handed
JupyterLab's copy, outside its own folder, and refuses it with 403 ("is not in root
static directory"): Notebook 7 opened after JupyterLab draws no icons.

Here the cache is keyed by the route's search path too. The checks that follow are
jupyter_server's own, unchanged (a file outside the route's folders is still refused).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from jupyter_server.base.handlers import FileFindHandler
from jupyter_server.utils import filefind

_found: dict[tuple[tuple[str, ...], str], str] = {}


def find_static_file(cls: type, roots: str | Sequence[str], path: str) -> str:
    """Where ``path`` is on the search path ``roots`` (``""``: nowhere, not remembered, as
    jupyter_server does, so a file installed later is found)."""
    key = ((roots,) if isinstance(roots, str) else tuple(roots), path)
    found = _found.get(key)
    if found is None:
        try:
            found = os.path.abspath(filefind(path, roots))
        except OSError:
            return ""
        _found[key] = found
    return found


def install() -> None:
    FileFindHandler.get_absolute_path = classmethod(find_static_file)  # type: ignore[method-assign, assignment]
