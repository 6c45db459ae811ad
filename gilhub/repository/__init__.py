"""The shared notebook repository (issue 4).

Entries are notebooks and plain files at repository paths, each with a linear
history of immutable versions kept in PostgreSQL (``sql/003_repository.sql``).

- :mod:`.paths` and :mod:`.notebooks` check and normalise what people push;
- :mod:`.store` is the database layer (SQLAlchemy Core, async);
- :mod:`.service` moves files between a user's storage and the repository;
- :mod:`.render` turns versions into HTML: a sanitised view, diffs, merges;
- :mod:`.handlers` serves the REST API and pages, :mod:`.cli` the command line.
"""
