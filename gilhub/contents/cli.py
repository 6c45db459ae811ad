"""``gilhub storage …``: notebook storage from the command line.

``gilhub storage import-pgcontents --from URL`` copies a pgcontents database
into gilhub (see :mod:`gilhub.contents.pgcontents_import`). Secrets need not
appear on the command line: the source URL may come from
``GILHUB_PGCONTENTS_URL`` and Fernet keys from ``GILHUB_PGCONTENTS_FERNET_KEY``
or a file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Unicode, default
from traitlets.config import Application

from gilhub import __version__
from gilhub.cli import HUB_ALIASES, CommandFailed, HubCommand
from gilhub.contents.pgcontents_import import PgcontentsImport, fernet_from_keys
from gilhub.db import create_engine


def parse_user_map(spec: str) -> dict[str, str]:
    """``"old=new,other=name"`` -> ``{"old": "new", "other": "name"}``."""
    mapping = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise CommandFailed(f"--user-map entries look like pgcontents_id=gilhub_name: {item!r}")
        mapping[source.strip()] = target.strip()
    return mapping


class ImportPgcontentsApp(HubCommand):
    name = "import-pgcontents"
    description = """Copy a pgcontents database (users, directories, files,
    remote checkpoints) into gilhub's notebook storage. Each pgcontents user goes
    to the existing gilhub user of the same name or the one --user-map names;
    nothing already stored is overwritten; everything skipped is listed with why."""
    examples = """
    GILHUB_PGCONTENTS_URL=postgresql://user:pw@host/db gilhub storage import-pgcontents
    gilhub storage import-pgcontents --from postgresql://host/db --user-map jdoe=jane
    gilhub storage import-pgcontents --from ... --fernet-key-file /root/pgcontents.keys
    """
    aliases = {
        **HUB_ALIASES,
        "from": "ImportPgcontentsApp.source_url",
        "user-map": "ImportPgcontentsApp.user_map",
        "fernet-key": "ImportPgcontentsApp.fernet_key",
        "fernet-key-file": "ImportPgcontentsApp.fernet_key_file",
    }

    source_url = Unicode(
        config=True,
        help="URL of the pgcontents database (default: env GILHUB_PGCONTENTS_URL).",
    )
    user_map = Unicode("", config=True, help="pgcontents_id=gilhub_name pairs, comma-separated.")
    fernet_key = Unicode(
        config=True,
        help="Fernet key(s), comma-separated, if pgcontents encrypted content"
        " (default: env GILHUB_PGCONTENTS_FERNET_KEY).",
    )
    fernet_key_file = Unicode(
        "", config=True, help="A file holding the Fernet key(s), one per line."
    )

    @default("source_url")
    def _source_url_default(self) -> str:
        return os.environ.get("GILHUB_PGCONTENTS_URL", "")

    @default("fernet_key")
    def _fernet_key_default(self) -> str:
        return os.environ.get("GILHUB_PGCONTENTS_FERNET_KEY", "")

    def _fernet_keys(self) -> list[str]:
        keys = self.fernet_key.replace(",", "\n").splitlines()
        if self.fernet_key_file:
            try:
                keys += Path(self.fernet_key_file).read_text(encoding="utf-8").splitlines()
            except OSError as error:
                raise CommandFailed(f"cannot read the Fernet key file: {error}") from error
        return keys

    async def run(self, engine: AsyncEngine) -> None:
        if not self.source_url:
            raise CommandFailed("say where pgcontents lives: --from URL or GILHUB_PGCONTENTS_URL")
        try:
            fernet = fernet_from_keys(self._fernet_keys())
        except ValueError as error:
            raise CommandFailed(f"invalid Fernet key: {error}") from error
        source = create_engine(self.source_url, pool_size=1)
        try:
            job = PgcontentsImport(
                source, engine, user_map=parse_user_map(self.user_map), fernet=fernet
            )
            report = await job.run()
        finally:
            await source.dispose()
        print("\n".join(report.lines()))


class StorageApp(Application):
    name = "storage"
    description = "Manage gilhub's notebook storage."
    version = __version__
    subcommands = {
        "import-pgcontents": (
            "gilhub.contents.cli.ImportPgcontentsApp",
            "Copy a pgcontents database into gilhub.",
        ),
    }

    def start(self) -> None:
        if self.subapp is None:
            print("gilhub storage: say import-pgcontents (see --help)", file=sys.stderr)
            self.exit(1)
        self.subapp.start()
