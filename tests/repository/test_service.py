"""Push from and pull into users' storage (real PostgreSQL, real contents schema)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.contents import query as contents
from gilhub.repository import service, store
from gilhub.repository.errors import BadRequest, Conflict, NotFound, TooLarge
from gilhub.repository.notebooks import parse_notebook, read_origin, serialize_notebook
from gilhub.users import User, create_user
from tests.repository.helpers import notebook_bytes

CONFIG = service.RepositoryConfig(max_size=200_000)


@pytest.fixture(scope="module")
def repository(engine: AsyncEngine) -> service.RepositoryService:
    return service.RepositoryService(engine, CONFIG)


@pytest.fixture(scope="module")
async def people(engine: AsyncEngine) -> dict[str, User]:
    async with engine.begin() as conn:
        return {name: await create_user(conn, name) for name in ("alice", "bob")}


async def save(engine: AsyncEngine, user: User, path: str, content: bytes) -> None:
    async with engine.begin() as conn:
        await contents.write_file(conn, user.db_role, path, content)


async def load(engine: AsyncEngine, user: User, path: str) -> bytes | None:
    async with engine.connect() as conn:
        record = await contents.read_file(conn, user.db_role, path)
    return record.content if record else None


async def test_pull_records_origin_and_next_push_starts_from_it(engine, repository, people):
    alice, bob = people["alice"], people["bob"]
    await save(engine, alice, "work/fit.ipynb", notebook_bytes("a = 1", output="<i>x</i>"))
    pushed = await repository.push_from_storage(
        alice, source="work/fit.ipynb", target="shared/fit.ipynb", message="first"
    )
    assert pushed.result.version.number == 1
    alice_copy = parse_notebook(await load(engine, alice, "work/fit.ipynb"))
    assert read_origin(alice_copy) is None, "a push leaves the user's file alone"
    assert alice_copy.cells[0].outputs, "the user's own outputs are kept"

    pulled = await repository.pull_to_storage(bob, path="shared/fit.ipynb")
    assert pulled.path == "shared/fit.ipynb" and pulled.written
    bob_copy = parse_notebook(await load(engine, bob, "shared/fit.ipynb"))
    assert read_origin(bob_copy) == ("shared/fit.ipynb", 1)
    unchanged = await repository.push_from_storage(bob, source="shared/fit.ipynb")
    assert not unchanged.result.created, "pushing back an unchanged pull adds no version"
    bob_copy.cells[0].source = "a = 2"
    await save(engine, bob, "shared/fit.ipynb", serialize_notebook(bob_copy))
    second = await repository.push_from_storage(bob, source="shared/fit.ipynb")
    assert second.result.version.number == 2

    # Alice's next push from her copy starts from her version 1: a conflict naming bob
    await save(engine, alice, "work/fit.ipynb", notebook_bytes("a = 1", "b = 3"))
    with pytest.raises(Conflict) as raised:
        await repository.push_from_storage(
            alice, source="work/fit.ipynb", target="shared/fit.ipynb"
        )
    assert "bob" in raised.value.message
    assert raised.value.details["mergeable"] is True
    merged = await repository.push_merge(
        alice, source="work/fit.ipynb", target="shared/fit.ipynb", base=1
    )
    assert merged.result.version.number == 3
    sources = [c.source for c in parse_notebook(await load(engine, alice, "work/fit.ipynb")).cells]
    assert sources == ["a = 2", "b = 3"]


async def test_consecutive_pushes_from_one_copy_start_from_the_last_push(
    engine, repository, people
):
    alice = people["alice"]
    for number, source in enumerate(["v = 1", "v = 2", "v = 3"], 1):
        await save(engine, alice, "steps.ipynb", notebook_bytes(source))
        outcome = await repository.push_from_storage(alice, source="steps.ipynb")
        assert outcome.result.version.number == number
    await save(engine, alice, "other-copy.ipynb", notebook_bytes("v = 4"))
    with pytest.raises(Conflict, match="already exists"):
        await repository.push_from_storage(alice, source="other-copy.ipynb", target="steps.ipynb")


async def test_pull_never_overwrites_silently(engine, repository, people):
    alice = people["alice"]
    await save(engine, alice, "mine.ipynb", notebook_bytes("v1"))
    await repository.push_from_storage(alice, source="mine.ipynb")
    await save(engine, alice, "mine.ipynb", notebook_bytes("local edits"))
    with pytest.raises(Conflict) as raised:
        await repository.pull_to_storage(alice, path="mine.ipynb")
    assert raised.value.details["beside"] == "mine (2).ipynb"
    assert parse_notebook(await load(engine, alice, "mine.ipynb")).cells[0].source == "local edits"
    beside = await repository.pull_to_storage(alice, path="mine.ipynb", on_exists="beside")
    assert beside.path == "mine (2).ipynb"
    overwritten = await repository.pull_to_storage(alice, path="mine.ipynb", on_exists="overwrite")
    assert overwritten.path == "mine.ipynb"
    assert parse_notebook(await load(engine, alice, "mine.ipynb")).cells[0].source == "v1"


async def test_bad_pushes_and_pulls_lose_nothing(engine, repository, people):
    alice = people["alice"]
    with pytest.raises(NotFound):
        await repository.push_from_storage(alice, source="missing.ipynb")
    await save(engine, alice, "big.ipynb", b"x" * 300_000)
    with pytest.raises(TooLarge):
        await repository.push_from_storage(alice, source="big.ipynb")
    await save(engine, alice, "notes.txt", b"hello")
    with pytest.raises(BadRequest, match="notebook"):
        await repository.push_from_storage(alice, source="notes.txt", target="notes.ipynb")
    await save(engine, alice, "broken.ipynb", b'{"cells": [')
    with pytest.raises(BadRequest, match="JSON"):
        await repository.push_from_storage(alice, source="broken.ipynb")
    with pytest.raises(BadRequest):
        await repository.push_from_storage(alice, source="notes.txt", target="../escape.txt")
    await repository.push_from_storage(alice, source="notes.txt")
    with pytest.raises(NotFound, match="no version 9"):
        await repository.pull_to_storage(alice, path="notes.txt", version=9)
    with pytest.raises(NotFound):
        await repository.pull_to_storage(alice, path="nothing/here.ipynb")
    with pytest.raises(BadRequest):
        await repository.pull_to_storage(alice, path="notes.txt", dest="/etc/notes.txt")


async def test_concurrent_pushes_from_two_users(engine, repository, people):
    alice, bob = people["alice"], people["bob"]
    await save(engine, alice, "race.ipynb", notebook_bytes("start"))
    await repository.push_from_storage(alice, source="race.ipynb")
    await repository.pull_to_storage(bob, path="race.ipynb")
    await save(engine, alice, "race.ipynb", notebook_bytes("alice"))
    await save(engine, bob, "race.ipynb", notebook_bytes("bob"))
    results = await asyncio.gather(
        repository.push_from_storage(alice, source="race.ipynb", base=1),
        repository.push_from_storage(bob, source="race.ipynb", base=1),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "PushOutcome"], results
    async with engine.connect() as conn:
        entry = await store.require_entry(conn, "race.ipynb")
        assert [v.number for v in await store.history(conn, entry)] == [2, 1]


async def test_a_file_in_the_way_of_a_pull_is_a_bad_request(engine, repository, people):
    alice = people["alice"]
    await save(engine, alice, "in-the-way.txt", b"mine")
    await save(engine, alice, "pulled.txt", b"from the repository")
    await repository.push_from_storage(alice, source="pulled.txt")
    with pytest.raises(BadRequest, match="not a directory"):
        await repository.pull_to_storage(alice, path="pulled.txt", dest="in-the-way.txt/x.txt")
    assert await load(engine, alice, "in-the-way.txt") == b"mine"
