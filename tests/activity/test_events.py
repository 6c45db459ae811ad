"""What the front end reports is checked whole, with a message naming the bad item."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from gilhub.activity.errors import BadActivity, TooMuchActivity
from gilhub.activity.events import (
    MAX_BODY_BYTES,
    MAX_SOURCE_KEPT,
    Answer,
    Execution,
    NotebookEvent,
    check_size,
    parse_answers,
    parse_events,
)


def execution(**changes) -> dict:
    event = {
        "type": "execution",
        "path": "analysis/x.ipynb",
        "cell_id": "cell-1",
        "source": "print(1)",
        "execution_count": 3,
        "started": "2026-11-29T09:00:00.000Z",
        "ended": "2026-11-29T09:00:01.200Z",
        "status": "ok",
        "output_hash": "0" * 64,
    }
    return {**event, **changes}


def test_an_execution_is_read_with_its_version_the_sha256_of_its_source() -> None:
    [run] = parse_events({"events": [execution()]})
    assert isinstance(run, Execution)
    assert run.cell_version == hashlib.sha256(b"print(1)").hexdigest()
    assert run.ended > run.started and run.started.tzinfo is not None


def test_a_huge_source_is_kept_truncated_with_the_hash_of_the_whole() -> None:
    source = "x = 1\n" * 1_000_000
    [run] = parse_events({"events": [execution(source=source)]})
    assert len(run.source) == MAX_SOURCE_KEPT and run.source_truncated
    assert run.cell_version == hashlib.sha256(source.encode()).hexdigest()


def test_a_source_cut_by_the_front_end_has_the_version_of_the_whole_it_sends() -> None:
    whole = hashlib.sha256(b"x" * 70_000).hexdigest()
    [run] = parse_events({"events": [execution(source="x" * 65536, source_sha256=whole)]})
    assert run.cell_version == whole and run.source_truncated
    own = hashlib.sha256(b"print(1)").hexdigest()
    [run] = parse_events({"events": [execution(source_sha256=own)]})
    assert run.cell_version == own and not run.source_truncated


def test_notebook_events_are_read() -> None:
    events = parse_events(
        {"events": [{"type": "close", "path": "/x.ipynb", "time": "2026-11-29T09:00:00+01:00"}]}
    )
    assert events == [NotebookEvent("x.ipynb", "close", events[0].time)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'a list "events"'),
        ({"events": "x"}, 'a list "events"'),
        ({"events": [execution()] * 201}, "At most 200 events"),
        ({"events": [3]}, "events[0] must be a JSON object"),
        ({"events": [execution(type="delete")]}, "events[0].type"),
        ({"events": [execution(), execution(path="../x.ipynb")]}, "events[1].path"),
        ({"events": [execution(path="")]}, "events[0].path"),
        ({"events": [execution(cell_id="")]}, "events[0].cell_id"),
        ({"events": [execution(cell_id="c" * 300)]}, "events[0].cell_id is longer"),
        ({"events": [execution(source=None)]}, "events[0].source"),
        ({"events": [execution(started="yesterday")]}, "events[0].started is not an ISO"),
        ({"events": [execution(started="2026-11-29T09:00:00")]}, "needs a time zone"),
        ({"events": [execution(ended=12)]}, "events[0].ended must be an ISO"),
        ({"events": [execution(ended="2026-11-29T08:00:00Z")]}, "ended is before started"),
        ({"events": [execution(status="maybe")]}, "events[0].status"),
        ({"events": [execution(execution_count=-1)]}, "execution_count"),
        ({"events": [execution(execution_count=True)]}, "execution_count"),
        ({"events": [execution(output_hash="abc")]}, "output_hash"),
        ({"events": [execution(source_sha256="ABC")]}, "events[0].source_sha256 must be"),
        ({"events": [{"type": "open", "path": "x.ipynb"}]}, "events[0].time"),
    ],
)
def test_bad_events_are_refused_naming_the_first_bad_one(body, message: str) -> None:
    with pytest.raises(BadActivity, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_events(body)


def test_a_body_over_a_mebibyte_is_refused() -> None:
    check_size(b"x" * MAX_BODY_BYTES)
    with pytest.raises(TooMuchActivity):
        check_size(b"x" * (MAX_BODY_BYTES + 1))


def test_answers_skips_and_silences_are_read() -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    body = {
        "answers": [
            {"prompt_id": str(ids[0]), "answer": "fit the decay"},
            {"prompt_id": str(ids[1]), "skipped": True},
            {"prompt_id": str(ids[2]), "dont_ask_in_notebook": True},
        ]
    }
    assert parse_answers(body) == [
        Answer(ids[0], "answered", "fit the decay"),
        Answer(ids[1], "skipped"),
        Answer(ids[2], "dont_ask"),
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"prompt_id": "nope", "answer": "x"}, "prompt_id"),
        ({"prompt_id": str(uuid.uuid4())}, "exactly one of"),
        ({"prompt_id": str(uuid.uuid4()), "answer": "x", "skipped": True}, "exactly one of"),
        ({"prompt_id": str(uuid.uuid4()), "answer": "x" * 4001}, "longer than 4000"),
        ({"prompt_id": str(uuid.uuid4()), "skipped": False}, "must be true"),
    ],
)
def test_bad_answers_are_refused(answer: dict, message: str) -> None:
    with pytest.raises(BadActivity, match=message):
        parse_answers({"answers": [answer]})
