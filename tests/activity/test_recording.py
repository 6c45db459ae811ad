"""Activity end to end: a real hub with activity enabled, real user servers reached through
the proxy, real PostgreSQL with each user's own role.

Alice's server runs for the whole module; Bob has no running server but tries everything
on Alice's; Carol's server starts while the site has recording switched off.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import nbformat
import psycopg
import pytest
from sqlalchemy import func, insert, select, text
from traitlets.config import Config

from gilhub.activity.schema import answers, cell_versions, executions, notebook_events
from gilhub.contents import roles
from gilhub.users import User
from tests.hub.conftest import USER_PASSWORD, RunningHub, running_hub
from tests.hub.servers_harness import start_and_wait

pytestmark = pytest.mark.timeout(300)

NOTEBOOK = "analysis/decay.ipynb"
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


@dataclass
class Person:
    user: User
    api: httpx.AsyncClient  # token: the hub's API and the proxy
    web: httpx.AsyncClient  # logged in through the form (pages)

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        assert self.user.db_role
        return self.user.db_role

    async def post(self, endpoint: str, body: object, owner: str | None = None) -> httpx.Response:
        """POST to ``owner``'s (default: their own) server's activity ``endpoint``."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = f"/user/{owner or self.name}/gilhub/activity{endpoint}"
        return await self.api.post(url, content=content)


async def person(hub: RunningHub, name: str, *, start: bool = False) -> Person:
    user = await hub.add_user(name)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    if start:
        assert (await start_and_wait(hub.app, user))[-1]["ready"]
    return Person(user, api, await hub.login(name, USER_PASSWORD))


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory) -> AsyncIterator[RunningHub]:
    config = Config()
    config.Activity.enabled = True
    config.Activity.mode = "continuous"
    config.Activity.changes_before_asking = 2
    config.Activity.prompts_per_hour = 50  # the hourly limit: tests/activity/test_rules.py
    async with running_hub(database_url, tmp_path_factory.mktemp("activity"), config) as hub:
        yield hub


@pytest.fixture(scope="module")
async def alice(hub: RunningHub) -> Person:
    return await person(hub, "alice", start=True)


@pytest.fixture(scope="module")
async def bob(hub: RunningHub) -> Person:
    return await person(hub, "bob")


def run(source: str, *, cell: str = "c1", at: int = 0, error: str | None = None, **kw) -> dict:
    """An execution event of ``source`` in ``cell``, ``at`` minutes after T0."""
    started = T0 + timedelta(minutes=at)
    event = {
        "type": "execution",
        "path": kw.pop("path", NOTEBOOK),
        "cell_id": cell,
        "source": source,
        "execution_count": at + 1,
        "started": started.isoformat(),
        "ended": (started + timedelta(seconds=1)).isoformat(),
        "status": "error" if error else "ok",
        "output_hash": hashlib.sha256(source.encode()).hexdigest(),
    }
    if error:
        event["ename"], event["evalue"] = error.split(": ", 1)
    return {**event, **kw}


def version(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


async def count(hub: RunningHub, table, owner: str) -> int:
    async with hub.app.db.connect() as conn:
        found = await conn.execute(
            select(func.count()).select_from(table).where(table.c.owner == owner)
        )
        return found.scalar_one()


async def recorded(hub: RunningHub, owner: str) -> tuple[int, int]:
    """(executions, notebook events) stored for ``owner``."""
    return await count(hub, executions, owner), await count(hub, notebook_events, owner)


# -- recording and asking ------------------------------------------------------------------


async def test_a_batch_posted_through_the_proxy_is_stored_under_the_users_role(
    hub: RunningHub, alice: Person
) -> None:
    events = [
        {"type": "open", "path": NOTEBOOK, "time": T0.isoformat()},
        run("x = load()", cell="c0", at=0),
    ]
    response = await alice.post("", {"events": events})
    assert response.status_code == 200, response.text
    assert response.json() == {"enabled": True, "mode": "continuous", "prompts": []}
    assert await recorded(hub, alice.role) == (1, 1)
    async with hub.app.db.connect() as conn:
        stored = (await conn.execute(select(cell_versions))).all()
    assert [(row.owner, row.path, row.cell_id, row.source) for row in stored] == [
        (alice.role, NOTEBOOK, "c0", "x = load()")
    ]
    assert stored[0].cell_version == version("x = load()")


async def test_a_cell_changed_n_times_then_run_again_is_asked_about_once(alice: Person) -> None:
    replies = []
    for minute, source in enumerate(["fit(a)", "fit(a, b)", "fit(a, b, c)"], start=1):
        response = await alice.post("", {"events": [run(source, at=minute)]})
        replies.append(response.json()["prompts"])
    assert replies[:2] == [[], []]
    [prompt] = replies[2]
    assert prompt["path"] == NOTEBOOK and prompt["cell_id"] == "c1"
    assert prompt["cell_version"] == version("fit(a, b, c)")
    assert prompt["question"] == "What are you trying to do or find out in this cell?"
    uuid.UUID(prompt["prompt_id"])
    again = await alice.post("", {"events": [run("fit(a, b, c)", at=4)]})
    assert again.json()["prompts"] == []  # at most once per version

    answer = {"prompt_id": prompt["prompt_id"], "answer": "Fitting the decay with 3 terms"}
    stored = await alice.post("/answers", {"answers": [answer]})
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"stored": 1}


async def test_an_error_followed_by_a_fix_is_asked_about(alice: Person) -> None:
    failed = await alice.post("", {"events": [run("y = x", cell="c2", at=5, error="NameError: x")]})
    assert failed.json()["prompts"] == []
    fixed = await alice.post("", {"events": [run("x = 1\ny = x", cell="c2", at=6)]})
    [prompt] = fixed.json()["prompts"]
    assert (prompt["cell_id"], prompt["cell_version"]) == ("c2", version("x = 1\ny = x"))
    skipped = await alice.post("/answers", {"answers": [{**_id(prompt), "skipped": True}]})
    assert skipped.json() == {"stored": 1}


def _id(prompt: dict) -> dict:
    return {"prompt_id": prompt["prompt_id"]}


async def test_never_asked_again_in_a_notebook_the_user_silenced(alice: Person) -> None:
    path = "quiet.ipynb"
    await alice.post("", {"events": [run("a", path=path, cell="q", at=7, error="E: e")]})
    fixed = await alice.post("", {"events": [run("b", path=path, cell="q", at=8)]})
    [prompt] = fixed.json()["prompts"]
    silence = {**_id(prompt), "dont_ask_in_notebook": True}
    assert (await alice.post("/answers", {"answers": [silence]})).json() == {"stored": 1}
    await alice.post("", {"events": [run("c", path=path, cell="r", at=9, error="E: e")]})
    again = await alice.post("", {"events": [run("d", path=path, cell="r", at=10)]})
    assert again.json()["prompts"] == []


async def test_on_demand_the_cells_that_changed_most_are_asked_about(alice: Person) -> None:
    path = "ondemand.ipynb"
    events = [
        run("a", path=path, cell="small", at=20),
        run("b", path=path, cell="small", at=21),
        run("a", path=path, cell="failing", at=22),
        run("b", path=path, cell="failing", at=23, error="ValueError: no"),
        run("b", path=path, cell="failing", at=24),
        run("a", path=path, cell="same", at=25),
        run("a", path=path, cell="same", at=26),
    ]
    working = await alice.post("", {"events": events})
    assert working.json()["prompts"] == []  # one change each: not yet worth a question
    response = await alice.api.post(f"/user/alice/gilhub/activity/ask?path={path}")
    assert response.status_code == 200, response.text
    assert [p["cell_id"] for p in response.json()["prompts"]] == ["failing", "small"]
    bad = await alice.api.post("/user/alice/gilhub/activity/ask?path=../x")
    assert bad.status_code == 400


async def test_an_unknown_prompt_is_404_and_the_batch_loses_nothing(
    hub: RunningHub, alice: Person
) -> None:
    await alice.post("", {"events": [run("p", cell="c3", at=11, error="E: e")]})
    [prompt] = (await alice.post("", {"events": [run("q", cell="c3", at=12)]})).json()["prompts"]
    batch = [
        {**_id(prompt), "answer": "checking q"},
        {"prompt_id": str(uuid.uuid4()), "skipped": True},
    ]
    refused = await alice.post("/answers", {"answers": batch})
    assert refused.status_code == 404, refused.text
    assert "No prompt" in refused.json()["message"]
    answered = await count(hub, answers, alice.role)
    # nothing of the refused batch was stored; the good answer can be given again
    retried = await alice.post("/answers", {"answers": batch[:1]})
    assert retried.json() == {"stored": 1}
    assert await count(hub, answers, alice.role) == answered + 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ({"events": [run("z", at=40)] * 201}, 400, "At most 200 events"),
        (json.dumps({"events": [run("z" * (1024 * 1024), at=40)]}).encode(), 413, "larger than"),
        ({"events": [{"type": "execution", "path": NOTEBOOK}]}, 400, "events[0].source"),
        ({"events": [run("z", at=40), run("z", started="last tuesday")]}, 400, "events[1].started"),
        ({"events": [run("z", ended="2026-01-01T00:00:00Z")]}, 400, "ended is before started"),
        ({"evnts": []}, 400, 'a list "events"'),
    ],
    ids=["not-json", "too-many", "oversized", "missing-fields", "bad-time", "time-order", "shape"],
)
async def test_bad_batches_get_a_clear_4xx_and_store_nothing(
    hub: RunningHub, alice: Person, body, status: int, message: str
) -> None:
    before = await recorded(hub, alice.role)
    response = await alice.post("", body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert await recorded(hub, alice.role) == before


async def test_bad_answers_get_a_clear_400(alice: Person) -> None:
    for body in ({"answers": [{"prompt_id": "x", "answer": "y"}]}, {"answers": 3}, b"[1"):
        response = await alice.post("/answers", body)
        assert response.status_code == 400, response.text
        assert response.json()["message"]


# -- the user's switch and the site's -------------------------------------------------------


async def test_nothing_is_stored_while_the_user_has_switched_recording_off(
    hub: RunningHub, alice: Person
) -> None:
    off = await alice.api.put("/hub/api/activity/settings", json={"enabled": False})
    assert off.json() == {"site_enabled": True, "mode": "continuous", "enabled": False}
    before = await recorded(hub, alice.role)
    response = await alice.post("", {"events": [run("off", cell="c9", at=50)]})
    assert response.json() == {"enabled": False, "mode": "off", "prompts": []}
    assert await recorded(hub, alice.role) == before
    on = await alice.api.put("/hub/api/activity/settings", json={"enabled": True})
    assert on.json()["enabled"] is True
    await alice.post("", {"events": [run("on", cell="c9", at=51)]})
    assert (await recorded(hub, alice.role))[0] == before[0] + 1


async def test_the_switch_takes_only_a_boolean(alice: Person) -> None:
    for body in ({"enabled": "no"}, {"enabled": False, "mode": "end"}, {}):
        response = await alice.api.put("/hub/api/activity/settings", json=body)
        assert response.status_code == 400, response.text
    assert (await alice.api.get("/hub/api/activity/settings")).json()["enabled"] is True


async def test_nothing_is_stored_by_a_server_started_while_the_site_is_off(
    hub: RunningHub,
) -> None:
    hub.app.activity.enabled = False
    try:
        carol = await person(hub, "carol", start=True)
    finally:
        hub.app.activity.enabled = True
    response = await carol.post("", {"events": [run("c", at=1)]})
    assert response.status_code == 200, response.text
    assert response.json() == {"enabled": False, "mode": "off", "prompts": []}
    assert await recorded(hub, carol.role) == (0, 0)
    answered = await carol.post(
        "/answers", {"answers": [{"prompt_id": str(uuid.uuid4()), "skipped": True}]}
    )
    assert answered.json() == {"stored": 0}
    await hub.app.servers.stop(carol.user)


# -- another user ---------------------------------------------------------------------------


async def test_another_user_reaches_none_of_the_servers_endpoints(
    hub: RunningHub, alice: Person, bob: Person
) -> None:
    before = await recorded(hub, alice.role)
    for endpoint, body in (
        ("", {"events": [run("bob was here", at=60)]}),
        ("/answers", {"answers": [{"prompt_id": str(uuid.uuid4()), "skipped": True}]}),
        (f"/ask?path={NOTEBOOK}", {}),
    ):
        with_token = await bob.post(endpoint, body, owner="alice")
        assert with_token.status_code in (403, 404), with_token.text
        with_cookie = await bob.web.post(
            f"/user/alice/gilhub/activity{endpoint}",
            json=body,
            headers=hub.xsrf_headers(bob.web),
        )
        assert with_cookie.status_code in (403, 404), with_cookie.text
        anonymous = await hub.client().post(f"/user/alice/gilhub/activity{endpoint}", json=body)
        assert anonymous.status_code in (302, 403), anonymous.text
    assert await recorded(hub, alice.role) == before


async def test_another_user_reaches_none_of_alices_record_through_the_hub(
    hub: RunningHub, alice: Person, bob: Person
) -> None:
    path = {"path": NOTEBOOK}
    assert (await bob.api.get("/hub/api/activity", params=path)).status_code == 404
    export = await bob.api.get("/hub/api/activity/export", params={**path, "format": "markdown"})
    assert export.status_code == 404
    assert (await bob.api.get("/hub/api/activity/notebooks")).json() == {"notebooks": []}
    assert (await bob.api.delete("/hub/api/activity", params=path)).status_code == 404
    assert (await bob.api.delete("/hub/api/activity")).status_code == 204  # his own: nothing
    assert (await bob.api.get("/hub/api/activity/counts")).status_code == 403
    assert (await bob.web.get(f"/hub/activity/{NOTEBOOK}")).status_code == 404
    assert (await bob.api.get("/hub/api/activity/settings")).json()["enabled"] is True
    assert (await alice.api.get("/hub/api/activity", params=path)).status_code == 200
    anonymous = hub.client()
    for url in ("/hub/api/activity/settings", "/hub/api/activity/notebooks"):
        assert (await anonymous.get(url)).status_code == 403


async def test_another_users_database_role_sees_and_writes_none_of_alices_rows(
    hub: RunningHub, alice: Person, bob: Person
) -> None:
    password = await roles.issue_role_password(hub.app.db, bob.role)
    url = roles.user_database_url(hub.app.db_url, bob.role, password)
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    assert await count(hub, executions, alice.role) > 0
    async with await psycopg.AsyncConnection.connect(libpq, autocommit=True) as conn:
        for table in ("cell_versions", "executions", "prompts", "answers", "notebook_events"):
            found = await conn.execute(f"SELECT count(*) FROM activity.{table}")  # noqa: S608
            assert (await found.fetchone())[0] == 0, table
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                "INSERT INTO activity.notebook_events (owner, path, kind, time)"
                " VALUES (%s, 'x.ipynb', 'open', now())",
                (alice.role,),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("UPDATE activity.settings SET enabled = false")


# -- the narrative ---------------------------------------------------------------------------


async def test_the_narrative_tells_sessions_versions_diffs_fixes_and_answers(
    alice: Person,
) -> None:
    response = await alice.api.get("/hub/api/activity", params={"path": NOTEBOOK})
    assert response.status_code == 200, response.text
    story = response.json()
    assert story["path"] == NOTEBOOK
    assert sum(s["executions"] for s in story["sessions"]) == len(
        [e for cell in story["cells"] for e in cell["executions"]]
    )
    cells = {cell["cell_id"]: cell for cell in story["cells"]}
    fit = cells["c1"]
    assert [v["source"] for v in fit["versions"]] == ["fit(a)", "fit(a, b)", "fit(a, b, c)"]
    assert fit["versions"][0]["diff"] == ""
    assert "-fit(a, b)\n+fit(a, b, c)\n" in fit["versions"][2]["diff"]
    assert [a["answer"] for a in fit["answers"]] == ["Fitting the decay with 3 terms"]
    assert fit["answers"][0]["cell_version"] == version("fit(a, b, c)")
    assert cells["c2"]["fixes"] == [
        {
            "error": {"ename": "NameError", "evalue": "x", "cell_version": version("y = x")},
            "fixed_by": version("x = 1\ny = x"),
        }
    ]
    assert [e["status"] for e in cells["c2"]["executions"]] == ["error", "ok"]


async def test_the_markdown_export_tells_how_the_analysis_was_done(alice: Person) -> None:
    params = {"path": NOTEBOOK, "format": "markdown"}
    response = await alice.api.get("/hub/api/activity/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    document = response.text
    assert document.startswith(f"# How this analysis was done: {NOTEBOOK}\n")
    assert "> Fitting the decay with 3 terms" in document
    assert "```diff\n--- before\n+++ after\n" in document
    assert "-fit(a, b)\n+fit(a, b, c)" in document
    assert f"`NameError: x` in version {version('y = x')[:8]}" in document


async def test_the_notebook_export_is_a_valid_notebook(alice: Person) -> None:
    params = {"path": NOTEBOOK, "format": "notebook"}
    response = await alice.api.get("/hub/api/activity/export", params=params)
    assert response.headers["content-type"] == "application/x-ipynb+json"
    notebook = nbformat.reads(response.text, as_version=4)
    nbformat.validate(notebook)
    assert "fit(a, b, c)" in [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    bad = await alice.api.get("/hub/api/activity/export", params={**params, "format": "pdf"})
    assert bad.status_code == 400


async def test_the_pages_show_switch_and_delete(hub: RunningHub, alice: Person) -> None:
    listing = await alice.web.get("/hub/activity")
    assert listing.status_code == 200
    assert f'href="/hub/activity/{NOTEBOOK}"' in listing.text
    assert "Recording is <strong>on</strong>" in listing.text
    story = await alice.web.get(f"/hub/activity/{NOTEBOOK}")
    assert story.status_code == 200
    assert "Fitting the decay with 3 terms" in story.text
    assert '<span class="added">+fit(a, b, c)</span>' in story.text
    switched = await alice.web.post(
        "/hub/activity", data={"action": "disable", "_xsrf": hub.xsrf_token(alice.web)}
    )
    assert switched.status_code == 303  # POST/redirect/GET
    assert (await alice.api.get("/hub/api/activity/settings")).json()["enabled"] is False
    await alice.api.put("/hub/api/activity/settings", json={"enabled": True})
    deleted = await alice.web.post(
        "/hub/activity/ondemand.ipynb",
        data={"action": "delete", "_xsrf": hub.xsrf_token(alice.web)},
    )
    assert deleted.status_code == 303  # POST/redirect/GET
    assert (await alice.web.get("/hub/activity/ondemand.ipynb")).status_code == 404


async def test_administrators_see_counts_only(hub: RunningHub, alice: Person) -> None:
    admin = hub.client(headers={"Authorization": f"token {await hub.token_for(hub.admin_name)}"})
    response = await admin.get("/hub/api/activity/counts")
    assert response.status_code == 200, response.text
    rows = {row["user"]: row for row in response.json()["users"]}
    assert rows["alice"]["executions"] == await count(hub, executions, alice.role)
    assert rows["alice"]["shared"] == []
    assert set(rows["alice"]) == {"user", "notebooks", "executions", "answers", "shared"}
    # an administrator's own narrative API shows only their own record
    assert (await admin.get("/hub/api/activity", params={"path": NOTEBOOK})).status_code == 404


async def test_an_administrator_reads_only_the_stories_a_user_shares(
    hub: RunningHub, alice: Person, bob: Person
) -> None:
    admin = hub.client(headers={"Authorization": f"token {await hub.token_for(hub.admin_name)}"})
    of_alice = {"path": NOTEBOOK, "user": "alice"}
    assert (await admin.get("/hub/api/activity", params=of_alice)).status_code == 404
    sharing = "/hub/api/activity/sharing"
    shared = await alice.api.put(sharing, params={"path": NOTEBOOK}, json={"shared": True})
    assert shared.json() == {"path": NOTEBOOK, "shared": True}
    story = await admin.get("/hub/api/activity", params=of_alice)
    assert story.status_code == 200 and story.json()["path"] == NOTEBOOK
    export = await admin.get("/hub/api/activity/export", params={**of_alice, "format": "notebook"})
    assert export.status_code == 200
    rows = {
        row["user"]: row for row in (await admin.get("/hub/api/activity/counts")).json()["users"]
    }
    assert rows["alice"]["shared"] == [NOTEBOOK]
    admin_web = await hub.login(hub.admin_name, hub.admin_password)
    page = await admin_web.get(f"/hub/activity/{NOTEBOOK}", params={"user": "alice"})
    assert page.status_code == 200 and "Fitting the decay" in page.text
    assert "Delete the record" not in page.text
    # only administrators, only shared notebooks
    assert (await bob.api.get("/hub/api/activity", params=of_alice)).status_code == 404
    others = {"path": "quiet.ipynb", "user": "alice"}
    assert (await admin.get("/hub/api/activity", params=others)).status_code == 404
    nothing = await alice.api.put(sharing, params={"path": "none.ipynb"}, json={"shared": True})
    assert nothing.status_code == 404
    assert (await alice.api.put(sharing, params={"path": NOTEBOOK}, json={})).status_code == 400
    unshared = await alice.web.post(
        f"/hub/activity/{NOTEBOOK}", data={"action": "unshare", "_xsrf": hub.xsrf_token(alice.web)}
    )
    assert unshared.status_code == 303  # POST/redirect/GET
    assert (await admin.get("/hub/api/activity", params=of_alice)).status_code == 404


# -- deletion and retention ------------------------------------------------------------------


async def test_a_user_deletes_one_notebooks_record_then_all(hub: RunningHub, alice: Person) -> None:
    notebooks = (await alice.api.get("/hub/api/activity/notebooks")).json()["notebooks"]
    paths = {notebook["path"] for notebook in notebooks}
    assert {NOTEBOOK, "quiet.ipynb"} <= paths
    deleted = await alice.api.delete("/hub/api/activity", params={"path": "quiet.ipynb"})
    assert deleted.status_code == 204
    notebooks = (await alice.api.get("/hub/api/activity/notebooks")).json()["notebooks"]
    assert "quiet.ipynb" not in {notebook["path"] for notebook in notebooks}
    assert NOTEBOOK in {notebook["path"] for notebook in notebooks}
    assert (await alice.api.delete("/hub/api/activity")).status_code == 204
    assert (await alice.api.get("/hub/api/activity/notebooks")).json() == {"notebooks": []}
    for table in (cell_versions, executions, notebook_events, answers):
        assert await count(hub, table, alice.role) == 0
    # the silenced notebook stays silenced: a choice, not a record
    await alice.post("", {"events": [run("a", path="quiet.ipynb", cell="q", at=70, error="E: e")]})
    again = await alice.post("", {"events": [run("b", path="quiet.ipynb", cell="q", at=71)]})
    assert again.json()["prompts"] == []


async def test_rows_older_than_the_retention_period_are_purged(hub: RunningHub) -> None:
    dave = await hub.add_user("dave")
    now = datetime.now(timezone.utc)
    old, recent = now - timedelta(days=400), now - timedelta(days=1)
    async with hub.app.db.begin() as conn:
        for source, received in (("old", old), ("recent", recent)):
            await conn.execute(
                insert(cell_versions).values(
                    owner=dave.db_role,
                    path="r.ipynb",
                    cell_id=source,
                    cell_version=version(source),
                    source=source,
                    first_seen=received,
                )
            )
            await conn.execute(
                insert(executions).values(
                    owner=dave.db_role,
                    path="r.ipynb",
                    cell_id=source,
                    cell_version=version(source),
                    started=received,
                    ended=received,
                    received=received,
                    status="ok",
                )
            )
    assert hub.app.activity.retention_days == 180
    assert await hub.app.activity.purge() >= 2
    async with hub.app.db.connect() as conn:
        left = await conn.execute(
            select(cell_versions.c.cell_id).where(cell_versions.c.owner == dave.db_role)
        )
        assert left.scalars().all() == ["recent"]
    assert await count(hub, executions, dave.db_role) == 1


async def test_the_migration_grants_users_no_id_columns(hub: RunningHub, bob: Person) -> None:
    async with hub.app.db.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT table_name FROM information_schema.column_privileges"
                " WHERE grantee = :role AND column_name = 'id' AND privilege_type = 'INSERT'"
                " AND table_schema = 'activity'"
            ),
            {"role": bob.role},
        )
        assert found.all() == []


async def test_a_users_record_follows_a_rename_and_goes_with_a_removal(hub: RunningHub) -> None:
    erin = await hub.add_user("erin")
    async with hub.app.db.begin() as conn:
        await conn.execute(
            insert(notebook_events).values(owner=erin.db_role, path="e.ipynb", kind="open", time=T0)
        )
    renamed = await hub.app.accounts.rename(erin, "erin2")
    assert renamed.db_role != erin.db_role
    assert await recorded(hub, renamed.db_role) == (0, 1)
    assert await recorded(hub, erin.db_role) == (0, 0)
    await hub.app.accounts.remove(renamed)
    assert await recorded(hub, renamed.db_role) == (0, 0)
