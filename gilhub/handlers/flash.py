"""What a form's POST has to show on the page its redirect leads to (POST/redirect/GET).

After a form is posted the hub answers ``303 See Other`` to a page, so the address bar
never keeps the POST's URL and reloading does not post again. What the POST has to say
there (a notice, an error, a password or token shown only once) travels in a cookie of
its own, :data:`COOKIE`, to the next page, which clears it: nothing of it stays in the
hub, so a hub restarted in between, or another hub on the same database (they share the
cookie secret), shows it all the same.

The cookie is sealed with Fernet under a key derived from the hub's cookie secret:
encrypted, not only signed as Tornado's secure cookies are, because it can carry a
one-time password or a new API token, which must not be readable from the browser's
cookie store. It names the user and the page it is for (another person logging in on
the same browser, or another page loading meanwhile, never takes it), expires after
:data:`MAX_AGE` seconds, and is ``HttpOnly``, ``SameSite=Lax``, limited to the hub's
pages (``Path``) and ``Secure`` under https. A forged, altered or expired cookie is
ignored.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: The cookie's name.
COOKIE = "gilhub-shown"
#: Seconds a message waits for its redirect to be followed.
MAX_AGE = 300
#: The largest sealed message, in bytes: one cookie, which browsers keep up to 4 KiB.
MAX_SEALED = 3800


@dataclass(frozen=True)
class Shown:
    """An opened message: the user and page it is for, and what to show."""

    user_id: int
    path: str
    context: dict[str, Any]


@functools.lru_cache(maxsize=4)
def _fernet(cookie_secret: bytes) -> Fernet:
    """A key of its own for these messages, derived from the hub's cookie secret."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gilhub shown").derive(
        cookie_secret
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _secret_bytes(cookie_secret: bytes | str) -> bytes:
    return cookie_secret.encode() if isinstance(cookie_secret, str) else cookie_secret


def seal(cookie_secret: bytes | str, shown: Shown) -> str | None:
    """The cookie's value for ``shown`` (JSON values only); ``None`` when it is too large."""
    payload = {"user": shown.user_id, "path": shown.path, "context": shown.context}
    data = json.dumps(payload, separators=(",", ":")).encode()
    sealed = _fernet(_secret_bytes(cookie_secret)).encrypt(data).decode("ascii")
    return sealed if len(sealed) <= MAX_SEALED else None


def unseal(cookie_secret: bytes | str, sealed: str) -> Shown | None:
    """The message in a cookie, or ``None`` when it is forged, altered, expired or malformed."""
    try:
        data = _fernet(_secret_bytes(cookie_secret)).decrypt(sealed.encode(), ttl=MAX_AGE)
        payload = json.loads(data)
        shown = Shown(payload["user"], payload["path"], payload["context"])
    except (InvalidToken, ValueError, TypeError, KeyError, UnicodeError):
        return None
    if not isinstance(shown.user_id, int) or not isinstance(shown.context, dict):
        return None
    return shown
