"""``python -m gilhub.singleuser``: jupyter_server as the hub starts it, minus start-up waste.

It is ``jupyter server`` (same arguments, same configuration) with two costs of
starting that a user server does not need removed before jupyter_server is imported:

- **jsonschema's IRI checker.** When ``rfc3987_syntax`` is installed (jupyter_events
  depends on it through ``jsonschema[format-nongpl]``), importing jsonschema builds its
  Lark grammar: about 1 s of CPU, the largest single cost of a start. jsonschema uses it
  only for the ``iri`` formats, which no schema of jupyter_server, jupyter_events or
  JupyterLab uses; without it those formats are simply not checked. Kernels are
  separate processes and keep it.
- **JupyterLab asking yarn for the npm registry.** Importing ``jupyterlab.labapp`` runs
  ``node yarn.js config --json`` when Node.js is on the PATH, to learn the registry for
  building extensions, which a running server never does (builds use ``jupyter lab
  build``, a process of its own). The server uses the default registry instead.

The measurements are in ``bench/start_bench.py``'s output (README, "Server starts").
"""

from __future__ import annotations

import sys


def skip_iri_grammar() -> None:
    """Keep jsonschema from building its IRI grammar (call before jsonschema is imported).

    The hub calls it too: nbformat imports jsonschema, and no notebook schema uses IRIs.
    """
    # A None entry makes "import rfc3987_syntax" raise ImportError, which jsonschema expects.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _skip_yarn_config() -> None:
    try:
        from jupyterlab import commands
    except ImportError:  # JupyterLab is not installed: nothing to skip
        return
    if hasattr(commands, "_yarn_config"):  # private, and no public switch exists
        registry = commands.YARN_DEFAULT_REGISTRY
        commands._yarn_config = lambda logger: {
            "yarn config": {"registry": registry},
            "npm config": {},
        }


def main() -> None:
    skip_iri_grammar()
    _skip_yarn_config()
    from jupyter_server.serverapp import main as serverapp_main

    sys.exit(serverapp_main())


if __name__ == "__main__":
    main()
