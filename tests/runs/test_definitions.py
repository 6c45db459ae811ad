"""Run definitions: CRUD (own only), cron schedules, the scheduler, the ``latest`` URLs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from gilhub.contents import query as contents
from gilhub.runs.schema import definition_runs, definitions
from tests.hub.conftest import RunningHub
from tests.runs.helpers import PATIENCE_SECONDS, Person, notebook, person


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> dict[str, Person]:
    alice, bob = await person(hub, "alice"), await person(hub, "bob")
    await alice.save("daily.ipynb", notebook("print(f'n = {n}')", parameters="n = 0"))
    return {"alice": alice, "bob": bob}


async def define(user: Person, **body) -> dict:
    fields = {"name": "daily", "notebook": "daily.ipynb", "parameters": {"n": 3}, **body}
    response = await user.api.post("/hub/api/run-definitions", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_definition_is_created_read_changed_and_deleted(people):
    alice = people["alice"]
    created = await define(alice, name="crud", schedule="0 6 * * 1-5", timezone="Asia/Tokyo")
    assert created["schedule"] == "0 6 * * 1-5" and created["timezone"] == "Asia/Tokyo"
    next_run = datetime.fromisoformat(created["next_run"])
    assert next_run.astimezone(ZoneInfo("Asia/Tokyo")).hour == 6
    assert created["kernel"] == "python3" and created["paused"] is False
    url = f"/hub/api/run-definitions/{created['id']}"
    assert (await alice.api.get(url)).json() == created
    listed = (await alice.api.get("/hub/api/run-definitions")).json()["definitions"]
    assert created["id"] in [definition["id"] for definition in listed]

    paused = await alice.api.patch(url, json={"paused": True})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["next_run"] is None
    resumed = (await alice.api.patch(url, json={"paused": False})).json()
    assert resumed["next_run"] is not None
    unscheduled = (await alice.api.patch(url, json={"schedule": None})).json()
    assert unscheduled["schedule"] is None and unscheduled["next_run"] is None

    assert (await alice.api.delete(url)).status_code == 204
    assert (await alice.api.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"schedule": "every day"}, "cron expression"),
        ({"schedule": "61 * * * *"}, "cron expression"),
        ({"schedule": "* * * * * *"}, "five fields"),
        ({"parameters": "[1, 2]"}, "JSON object"),
        ({"parameters": {"not a name": 1}}, "identifiers"),
        ({"kernel": "no-such-kernel"}, "No kernel named"),
        ({"kernel": "../x"}, "kernel name"),
        ({"name": ""}, "name"),
        ({"keep_runs": 0}, "keep_runs"),
        ({"paused": "yes"}, "paused"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"colour": "red"}, "Unknown fields"),
    ],
)
async def test_bad_definitions_are_refused_clearly_and_nothing_is_kept(people, body, words):
    alice = people["alice"]
    fields = {"name": "bad", "notebook": "daily.ipynb", **body}
    response = await alice.api.post("/hub/api/run-definitions", json=fields)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    names = [
        d["name"] for d in (await alice.api.get("/hub/api/run-definitions")).json()["definitions"]
    ]
    assert "bad" not in names


async def test_an_unknown_notebook_a_non_json_body_and_an_oversized_body_are_refused(people):
    alice = people["alice"]
    missing = await alice.api.post(
        "/hub/api/run-definitions", json={"name": "x", "notebook": "nowhere.ipynb"}
    )
    assert missing.status_code == 404 and "nowhere.ipynb" in missing.json()["message"]
    broken = await alice.api.post("/hub/api/run-definitions", content=b"{not json")
    assert broken.status_code == 400
    huge = await alice.api.post(
        "/hub/api/run-definitions",
        json={"name": "x", "notebook": "daily.ipynb", "parameters": {"v": "x" * 2_000_000}},
    )
    assert huge.status_code == 413


async def test_a_name_is_used_once_per_person(people):
    alice, bob = people["alice"], people["bob"]
    await define(alice, name="twice")
    again = await alice.api.post(
        "/hub/api/run-definitions", json={"name": "twice", "notebook": "daily.ipynb"}
    )
    assert again.status_code == 400 and "already" in again.json()["message"]
    await bob.save("daily.ipynb", notebook("1"))
    await define(bob, name="twice")  # Bob's names are his own


async def test_running_a_definition_now_and_its_latest_urls(people):
    alice = people["alice"]
    created = await define(alice, name="on-demand")
    url = f"/hub/api/run-definitions/{created['id']}"
    assert (await alice.api.get(f"{url}/latest")).status_code == 404  # nothing ran yet
    started = await alice.api.post(f"{url}/runs")
    assert started.status_code == 201, started.text
    run = await alice.finished(started.json())
    assert run["status"] == "completed" and run["parameters"] == {"n": 3}
    latest = (await alice.api.get(f"{url}/latest")).json()
    assert latest["id"] == run["id"]
    report = await alice.api.get(f"{url}/latest/report")
    assert report.status_code == 200 and "n = 3" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    listed = (await alice.api.get(f"{url}/runs")).json()["runs"]
    assert [item["id"] for item in listed] == [run["id"]]


async def linked_runs(hub: RunningHub, definition_id: int) -> list[int]:
    async with hub.app.db.connect() as conn:
        query = select(definition_runs.c.run_id).where(
            definition_runs.c.definition_id == definition_id
        )
        return list((await conn.execute(query)).scalars().all())


async def test_a_due_schedule_queues_one_run_even_after_many_missed_times(people, hub):
    """As if the hub had been down for a day: the every-minute definition is due since
    then, and the scheduler queues one run, not 1,440, and sets its next time ahead."""
    alice = people["alice"]
    created = await define(alice, name="every-minute", schedule="* * * * *", keep_runs=1)
    a_day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    async with hub.app.db.begin() as conn:
        await conn.execute(
            update(definitions).where(definitions.c.id == created["id"]).values(next_run=a_day_ago)
        )
    # The hub's own scheduler may be queueing it at this moment (holding the row's lock,
    # which queue_due skips): wait until the run is linked, then ask once more.
    async with asyncio.timeout(PATIENCE_SECONDS):
        while not await linked_runs(hub, created["id"]):
            await hub.app.runs.definitions.queue_due()
            await asyncio.sleep(0.1)
    await hub.app.runs.definitions.queue_due()  # nothing more is due now
    run_ids = await linked_runs(hub, created["id"])
    assert len(run_ids) == 1
    after = (await alice.api.get(f"/hub/api/run-definitions/{created['id']}")).json()
    assert datetime.fromisoformat(after["next_run"]) > datetime.now(timezone.utc)
    run = await alice.finished({"id": run_ids[0]})
    assert run["status"] == "completed"
    await alice.api.patch(f"/hub/api/run-definitions/{created['id']}", json={"paused": True})


async def test_the_scheduler_runs_a_due_definition_by_itself_and_keeps_the_last_n(people, hub):
    alice = people["alice"]
    created = await define(alice, name="kept", keep_runs=1)
    url = f"/hub/api/run-definitions/{created['id']}"
    first = await alice.finished((await alice.api.post(f"{url}/runs")).json())
    # scheduled, and due at once: the scheduler (woken by the change) queues it
    await alice.api.patch(url, json={"schedule": "0 0 1 1 *"})
    async with hub.app.db.begin() as conn:
        await conn.execute(
            update(definitions)
            .where(definitions.c.id == created["id"])
            .values(next_run=datetime.now(timezone.utc))
        )
    hub.app.runs.definitions.changed.set()
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            runs = (await alice.api.get(f"{url}/runs")).json()["runs"]
            if runs and runs[0]["id"] != first["id"]:
                break
            await asyncio.sleep(0.2)
    await alice.finished(runs[0])
    assert [run["id"] for run in (await alice.api.get(f"{url}/runs")).json()["runs"]] == [
        runs[0]["id"]
    ]
    assert (await alice.api.get(f"/hub/api/runs/{first['id']}")).status_code == 404  # pruned


async def test_a_scheduled_run_whose_notebook_is_gone_is_said_on_the_definition(people, hub):
    alice = people["alice"]
    await alice.save("fleeting.ipynb", notebook("1"))
    created = await define(alice, name="fleeting", notebook="fleeting.ipynb", schedule="* * * * *")
    async with hub.app.db.begin() as conn:
        await contents.delete_tree(conn, alice.role, "fleeting.ipynb")
        await conn.execute(
            update(definitions)
            .where(definitions.c.id == created["id"])
            .values(next_run=datetime.now(timezone.utc) - timedelta(minutes=5))
        )
    await hub.app.runs.definitions.queue_due()
    after = (await alice.api.get(f"/hub/api/run-definitions/{created['id']}")).json()
    assert "fleeting.ipynb" in after["last_error"]
    await alice.api.delete(f"/hub/api/run-definitions/{created['id']}")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/runs"),
        ("POST", "/runs"),
        ("GET", "/latest"),
        ("GET", "/latest/report"),
    ],
)
async def test_another_user_cannot_reach_alices_definitions(people, method, suffix):
    alice, bob = people["alice"], people["bob"]
    created = await define(alice, name=f"private-{method}-{suffix.strip('/')}")
    await alice.finished(
        (await alice.api.post(f"/hub/api/run-definitions/{created['id']}/runs")).json()
    )
    url = f"/hub/api/run-definitions/{created['id']}{suffix}"
    body = {"json": {"paused": True}} if method == "PATCH" else {}
    response = await bob.api.request(method, url, **body)
    assert response.status_code == 404, response.text
    listed = (await bob.api.get("/hub/api/run-definitions")).json()["definitions"]
    assert created["id"] not in [definition["id"] for definition in listed]
    assert (await alice.api.get(f"/hub/api/run-definitions/{created['id']}")).json() == created


async def test_the_definitions_page_lists_own_definitions_only(people, hub):
    await define(people["alice"], name="shown-on-page")
    alice_web = await hub.login("alice", "a-good-password")
    page = await alice_web.get("/hub/runs/definitions")
    assert page.status_code == 200 and "shown-on-page" in page.text
    bob_web = await hub.login("bob", "a-good-password")
    assert "shown-on-page" not in (await bob_web.get("/hub/runs/definitions")).text
