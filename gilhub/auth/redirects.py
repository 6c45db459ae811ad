"""Validation of ``next=`` targets: only paths on this hub, never another site."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

# Characters that keep their meaning in a path, query or fragment; "%" keeps
# existing escapes. Everything else (quotes, angle brackets, spaces) is escaped.
_URL_SAFE = "/?#&=%:@!$'()*+,;~[]"


def is_local_path(target: str) -> bool:
    """True for an absolute path on this host such as ``/hub/home?x=1``.

    Refused: anything with a scheme or host (``https://x``, ``//x``, ``///x``),
    backslashes (browsers read ``/\\x`` as ``//x``) and control characters
    (browsers strip tabs and newlines, turning ``/\\t/x`` into ``//x``).
    """
    if not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it stays on this hub (percent-encoded for a Location header)."""
    return quote(target, safe=_URL_SAFE) if target and is_local_path(target) else default
