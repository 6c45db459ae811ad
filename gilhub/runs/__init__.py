"""Parameterised runs of notebooks as jobs (issue 12).

A run executes a notebook (from the user's storage, or a repository entry at a
version) with parameters, under its user's identity, in a worker process of its
own, and keeps its status, per-cell progress, typed messages and output.

- :mod:`.schema` describes the tables (``sql/010_runs.sql``), :mod:`.query` queries
  them (raising :mod:`.errors`);
- :mod:`.worker` is the process that executes a run with papermill, through the
  reporting engine of :mod:`.engine`; :mod:`.access` makes its database login and token;
- :mod:`.service` is the configurable :class:`~.service.Runs` (``hub.runs``): the
  queue and its limits, cancel, re-adoption after a hub restart;
- :mod:`.api` serves the REST API (:mod:`.web`: errors to HTTP statuses), :mod:`.pages`
  the pages.
"""

from gilhub.parts import NavLink, Part

part = Part(
    name="runs",
    handlers=("gilhub.runs.api", "gilhub.runs.pages"),
    nav=NavLink("Runs", "runs"),
    subcommands={"run": ("gilhub.runs.cli.RunCommand", "Run a notebook on the hub as a job.")},
    configurables=("gilhub.runs.service.Runs",),
    migrations=("009_run_definitions.sql", "010_runs.sql"),
    start="gilhub.runs.service.start",
    stop="gilhub.runs.service.stop",
    service_attribute="runs",
)
