"""The site's activity settings as a user's server receives them from the hub.

The hub's :class:`~gilhub.activity.service.Activity` (``c.Activity.…``) decides them; the
spawner passes them in the server's environment (:data:`SITE_SETTINGS_ENV`, JSON), as it
passes the other settings a server needs. A server started without them records nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from gilhub.activity.rules import Rules

SITE_SETTINGS_ENV = "GILHUB_ACTIVITY"


@dataclass(frozen=True)
class SiteSettings:
    enabled: bool = False
    rules: Rules = field(default_factory=lambda: Rules(mode="off"))
    #: Events one server accepts per minute; beyond, 429 (a flood, not work).
    events_per_minute: int = 2000

    def as_environment(self) -> dict[str, str]:
        return {SITE_SETTINGS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SiteSettings:
        """The settings the hub passed; off when there are none (a server without a hub)."""
        raw = (os.environ if environ is None else environ).get(SITE_SETTINGS_ENV)
        if not raw:
            return cls()
        values = json.loads(raw)
        return cls(
            enabled=bool(values["enabled"]),
            rules=Rules(**values["rules"]),
            events_per_minute=int(values["events_per_minute"]),
        )
