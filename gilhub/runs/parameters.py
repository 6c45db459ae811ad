"""What a notebook's ``parameters`` cell declares, as papermill reads it.

Shared by the hub (the parameters of a notebook, for a form) and the worker (the
warnings of a run); papermill's :func:`~papermill.inspect_notebook` reads a file,
so the notebook is written to a temporary one. Blocking: call it in a thread.
papermill is imported where it is used: importing it (nbclient, jupyter_client …)
would delay the hub's start.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Declared:
    has_cell: bool
    #: name -> {"name", "inferred_type_name", "default", "help"} (papermill's inference)
    parameters: dict[str, dict[str, Any]]


def declared_parameters(path: Path) -> Declared:
    """The parameters declared by the notebook file at ``path``."""
    import papermill
    from papermill.iorw import load_notebook_node
    from papermill.utils import find_first_tagged_cell_index

    if find_first_tagged_cell_index(load_notebook_node(str(path)), "parameters") < 0:
        return Declared(has_cell=False, parameters={})
    return Declared(has_cell=True, parameters=papermill.inspect_notebook(str(path)))


def declared_parameters_of(content: bytes) -> Declared:
    with tempfile.TemporaryDirectory(prefix="gilhub-inspect-") as workdir:
        path = Path(workdir, "notebook.ipynb")
        path.write_bytes(content)
        return declared_parameters(path)
