"""What every contents model must look like, whichever manager produced it.

The rules come from jupyter_server's own contract (``validate_model`` in its
contents handlers, and its ``tests/services/contents``): the same keys always
present, timestamps as timezone-aware ISO 8601, ``size`` in bytes for files,
``content``/``format`` set exactly when content was asked for, ``hash`` and
``hash_algorithm`` set exactly when ``hash=1`` was asked for.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx

MODEL_KEYS = {
    "name",
    "path",
    "type",
    "writable",
    "created",
    "last_modified",
    "mimetype",
    "content",
    "format",
    "size",
    "hash",
    "hash_algorithm",
}
# Far enough to absorb any clock skew between the test and the server; close
# enough to catch epoch zero, local time sent as UTC, or seconds taken for ms.
_SANE_DISTANCE = timedelta(days=1)


def timestamp(value: Any) -> datetime:
    """Parse a model timestamp; it must be ISO 8601, timezone-aware and near now."""
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without timezone: {value}"
    assert abs(datetime.now(timezone.utc) - parsed) < _SANE_DISTANCE, value
    return parsed


def check_model(
    model: dict[str, Any],
    *,
    path: str,
    type_: str,
    content: bool = False,
    hashed: bool = False,
) -> dict[str, Any]:
    """Assert the common shape of a model and return it for further checks."""
    assert MODEL_KEYS <= set(model), f"missing keys: {MODEL_KEYS - set(model)}"
    assert model["path"] == path
    assert model["name"] == path.rsplit("/", 1)[-1]
    assert model["type"] == type_
    assert model["writable"] is True
    timestamp(model["created"])
    timestamp(model["last_modified"])
    if type_ == "directory":
        assert model["size"] is None or (isinstance(model["size"], int) and model["size"] >= 0)
    else:
        assert isinstance(model["size"], int) and model["size"] >= 0, model["size"]
    if content:
        assert model["content"] is not None and model["format"] is not None
    else:
        assert model["content"] is None and model["format"] is None
    if hashed:
        assert model["hash_algorithm"] == "sha256"
        assert isinstance(model["hash"], str) and len(model["hash"]) == 64
    else:
        assert model["hash"] is None and model["hash_algorithm"] is None
    return model


def created(response: httpx.Response, *, path: str, type_: str) -> dict[str, Any]:
    """A 201 answer to a create request, with a ``Location`` header pointing at the new path."""
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith("/api/contents/" + quote(path, safe="/"))
    return check_model(response.json(), path=path, type_=type_)


def status(response: httpx.Response, expected: int) -> httpx.Response:
    """Assert the status code, showing the body when it differs."""
    assert response.status_code == expected, (response.status_code, response.text[:500])
    return response


def decoded(model: dict[str, Any]) -> bytes:
    """The bytes of a file model, whatever format the server chose."""
    if model["format"] == "base64":
        return base64.b64decode(model["content"])
    assert model["format"] == "text", model["format"]
    return model["content"].encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listing_names(model: dict[str, Any]) -> set[str]:
    assert model["type"] == "directory" and isinstance(model["content"], list)
    return {entry["name"] for entry in model["content"]}
