"""The shared notebook repository (issue 4).

Entries are notebooks and plain files at repository paths, each with a linear
history of immutable versions kept in PostgreSQL (``sql/003_repository.sql``).

- :mod:`.paths` and :mod:`.notebooks` check and normalise what people push;
- :mod:`.schema` describes the tables, :mod:`.store` queries them (raising :mod:`.errors`);
- :mod:`.service` moves files between a user's storage and the repository;
- :mod:`.render` turns versions into HTML: a sanitised view, diffs, merges;
- :mod:`.pages` and :mod:`.api` serve the pages and REST API (:mod:`.web`: what they
  share), :mod:`.cli` the command line.
"""

from gilhub.parts import NavLink, Part

part = Part(
    name="repository",
    handlers=("gilhub.repository.api", "gilhub.repository.pages"),
    nav=NavLink("Repository", "repo"),
    subcommands={
        "repo": ("gilhub.repository.cli.RepoApp", "Work with the shared notebook repository.")
    },
    configurables=("gilhub.repository.service.RepositoryConfig",),
    migrations=("003_repository.sql",),
    start="gilhub.repository.service.start",
    service_attribute="repository",
)
