"""What a form's POST has to show on the page its redirect leads to (POST/redirect/GET).

After a form is posted the hub answers ``303 See Other`` to a page, so the address bar
never keeps the POST's URL and reloading does not post again. What the POST has to say
there (a notice, an error, a password or token shown only once) is kept here, in the
hub's memory, for the same person's next request naming it: never in the URL (logs,
history) or a cookie (the browser's disk). A message is shown once, and forgotten after
``MAX_AGE`` seconds if the redirect is never followed.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

#: Seconds a message waits for its redirect to be followed.
MAX_AGE = 300.0
#: Messages kept at most (the oldest go first): bounds the memory a flood of POSTs takes.
MAX_MESSAGES = 10_000
#: The query argument naming a message.
ARGUMENT = "shown"


@dataclass(frozen=True)
class _Message:
    user_id: int
    expires: float
    context: dict[str, Any]


class Flashes:
    """One-time messages from a POST to the GET after its redirect."""

    def __init__(self) -> None:
        self._messages: OrderedDict[str, _Message] = OrderedDict()

    def put(self, user_id: int, context: dict[str, Any]) -> str:
        """Keep ``context`` for ``user_id``; the key to name in the redirect's URL."""
        self._forget_expired()
        while len(self._messages) >= MAX_MESSAGES:
            self._messages.popitem(last=False)
        key = secrets.token_urlsafe(16)
        self._messages[key] = _Message(user_id, time.monotonic() + MAX_AGE, context)
        return key

    def take(self, user_id: int, key: str) -> dict[str, Any]:
        """The context kept under ``key`` for ``user_id`` (then forgotten), else ``{}``."""
        message = self._messages.get(key)
        if message is None or message.user_id != user_id or message.expires < time.monotonic():
            return {}
        del self._messages[key]
        return message.context

    def _forget_expired(self) -> None:
        now = time.monotonic()
        while self._messages:
            key, oldest = next(iter(self._messages.items()))
            if oldest.expires >= now:
                break
            del self._messages[key]
