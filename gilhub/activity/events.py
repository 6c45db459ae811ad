"""What the front end reports, checked: events and answers as typed values, or an error
saying which item is wrong and why (:class:`~.errors.BadActivity`,
:class:`~.errors.TooMuchActivity`).

A request is checked whole before anything is stored, so a bad item never leaves half a
batch behind. Long texts the user cannot shorten (a cell's source, an error's message) are
kept truncated; the version of a cell is the sha256 of its whole source all the same (sent
as ``source_sha256`` when the front end cut the source itself).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gilhub.activity.errors import BadActivity, TooMuchActivity
from gilhub.contents import paths
from gilhub.contents.errors import InvalidPath

MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 200
MAX_CELL_ID_LENGTH = 256
MAX_ENAME_LENGTH = 256
MAX_ANSWER_LENGTH = 4000
#: Characters of a cell's source kept (a 10 MB source is kept this long, with its hash).
MAX_SOURCE_KEPT = 100_000
#: Characters of an error's message kept.
MAX_EVALUE_KEPT = 4000
NOTEBOOK_EVENT_KINDS = ("open", "save", "close")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Execution:
    path: str
    cell_id: str
    cell_version: str
    source: str
    source_truncated: bool
    execution_count: int | None
    started: datetime
    ended: datetime
    status: str
    ename: str | None
    evalue: str | None
    output_hash: str | None


@dataclass(frozen=True)
class NotebookEvent:
    path: str
    kind: str
    time: datetime


Event = Execution | NotebookEvent


@dataclass(frozen=True)
class Answer:
    prompt_id: uuid.UUID
    outcome: str  # "answered", "skipped" or "dont_ask"
    text: str | None = None


def cell_version(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise TooMuchActivity(f"The request is larger than {MAX_BODY_BYTES} bytes.")


def notebook_path(value: Any, where: str = "path") -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise BadActivity(f"{where} must be a notebook's path.")
    try:
        return paths.normalize(value)
    except InvalidPath as error:
        raise BadActivity(f"{where}: {error}") from None


def _items(body: Any, key: str) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise BadActivity(f'The body must be a JSON object with a list "{key}".')
    items = body[key]
    if len(items) > MAX_ITEMS:
        raise BadActivity(f"At most {MAX_ITEMS} {key} per request ({len(items)} sent).")
    return items


def parse_events(body: Any) -> list[Event]:
    """``{"events": [...]}`` as events (:class:`BadActivity` naming the first bad one)."""
    return [_event(item, f"events[{index}]") for index, item in enumerate(_items(body, "events"))]


def parse_answers(body: Any) -> list[Answer]:
    """``{"answers": [...]}`` as answers."""
    return [
        _answer(item, f"answers[{index}]") for index, item in enumerate(_items(body, "answers"))
    ]


def _event(item: Any, where: str) -> Event:
    if not isinstance(item, dict):
        raise BadActivity(f"{where} must be a JSON object.")
    kind = item.get("type")
    if kind == "execution":
        return _execution(item, where)
    if kind in NOTEBOOK_EVENT_KINDS:
        return NotebookEvent(
            notebook_path(item.get("path"), f"{where}.path"),
            kind,
            _time(item.get("time"), f"{where}.time"),
        )
    raise BadActivity(f"{where}.type must be one of execution, open, save, close.")


def _execution(item: dict[str, Any], where: str) -> Execution:
    source = item.get("source")
    if not isinstance(source, str):
        raise BadActivity(f"{where}.source must be a string.")
    started = _time(item.get("started"), f"{where}.started")
    ended = _time(item.get("ended"), f"{where}.ended")
    if ended < started:
        raise BadActivity(f"{where}: ended is before started.")
    status = item.get("status")
    if status not in ("ok", "error"):
        raise BadActivity(f'{where}.status must be "ok" or "error".')
    version, truncated = _version(
        source, _sha256(item.get("source_sha256"), where, "source_sha256")
    )
    return Execution(
        path=notebook_path(item.get("path"), f"{where}.path"),
        cell_id=_text(item.get("cell_id"), f"{where}.cell_id", MAX_CELL_ID_LENGTH),
        cell_version=version,
        source=source[:MAX_SOURCE_KEPT],
        source_truncated=truncated,
        execution_count=_count(item.get("execution_count"), f"{where}.execution_count"),
        started=started,
        ended=ended,
        status=status,
        ename=_optional_text(item.get("ename"), f"{where}.ename", MAX_ENAME_LENGTH),
        evalue=_kept(item.get("evalue"), f"{where}.evalue", MAX_EVALUE_KEPT),
        output_hash=_sha256(item.get("output_hash"), where, "output_hash"),
    )


def _version(source: str, whole_hash: str | None) -> tuple[str, bool]:
    """The cell's version and whether the source kept is cut. A front end that cut a long
    source itself sends the hash of the whole (``source_sha256``), which is then the version."""
    if whole_hash is not None and whole_hash != cell_version(source):
        return whole_hash, True
    return cell_version(source), len(source) > MAX_SOURCE_KEPT


def _sha256(value: Any, where: str, name: str) -> str | None:
    if value is not None and not (isinstance(value, str) and _SHA256_HEX.match(value)):
        raise BadActivity(f"{where}.{name} must be a sha256 in hexadecimal.")
    return value


def _answer(item: Any, where: str) -> Answer:
    if not isinstance(item, dict):
        raise BadActivity(f"{where} must be a JSON object.")
    try:
        prompt_id = uuid.UUID(str(item.get("prompt_id")))
    except ValueError:
        raise BadActivity(f"{where}.prompt_id must be a prompt's id.") from None
    given = [key for key in ("answer", "skipped", "dont_ask_in_notebook") if key in item]
    if len(given) != 1:
        raise BadActivity(f"{where} needs exactly one of answer, skipped, dont_ask_in_notebook.")
    if given[0] == "answer":
        text = _text(item["answer"], f"{where}.answer", MAX_ANSWER_LENGTH)
        return Answer(prompt_id, "answered", text)
    if item[given[0]] is not True:
        raise BadActivity(f"{where}.{given[0]} must be true.")
    return Answer(prompt_id, "skipped" if given[0] == "skipped" else "dont_ask")


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadActivity(f"{where} must be a non-empty string.")
    if len(value) > limit:
        raise BadActivity(f"{where} is longer than {limit} characters.")
    return value


def _optional_text(value: Any, where: str, limit: int) -> str | None:
    return None if value is None or value == "" else _text(value, where, limit)


def _kept(value: Any, where: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadActivity(f"{where} must be a string.")
    return value[:limit]


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise BadActivity(f"{where} must be a whole number or null.")
    return value


def _time(value: Any, where: str) -> datetime:
    """An ISO 8601 time with its offset (``…Z`` as JavaScript's ``toISOString()`` writes)."""
    if not isinstance(value, str) or len(value) > 40:
        raise BadActivity(f"{where} must be an ISO 8601 time, e.g. 2026-11-29T09:00:00.000Z.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadActivity(f"{where} is not an ISO 8601 time: {value!r}.") from None
    if moment.tzinfo is None:
        raise BadActivity(f"{where} needs a time zone (…Z or an offset): {value!r}.")
    return moment
