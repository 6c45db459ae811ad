"""The lab bibliography: the shared BibTeX file, its pages and API, and citations in notebooks.

- :mod:`.library` parses the file (:mod:`.cache` keeps parses in PostgreSQL),
  :mod:`.search` and :mod:`.format` find and format entries, :mod:`.writer` adds to it;
- :mod:`.citations` finds citations in markdown, :mod:`.preprocessor` links them when
  the hub renders a notebook;
- :mod:`.service` is the configurable :class:`~.service.LabBibliography`, built once
  at start as ``hub.bibliography``;
- :mod:`.pages` and :mod:`.api` serve it (:mod:`.web`: what they share), :mod:`.cli`
  checks and merges from the command line.
"""

from gilhub.parts import NavLink, Part

part = Part(
    name="bibliography",
    handlers=("gilhub.bibliography.api", "gilhub.bibliography.pages"),
    nav=NavLink("Bibliography", "bib"),
    subcommands={"bib": ("gilhub.bibliography.cli.BibApp", "Work with the lab bibliography.")},
    configurables=("gilhub.bibliography.service.LabBibliography",),
    migrations=("004_bibliography.sql",),
    start="gilhub.bibliography.service.start",
    service_attribute="bibliography",
)
