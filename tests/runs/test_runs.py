"""Runs against a real hub, real PostgreSQL and real kernels (papermill + nbclient)."""

from __future__ import annotations

import asyncio
import json
import re

import psutil
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from gilhub.auth.scopes import ScopeError
from gilhub.auth.tokens import create_token
from gilhub.contents import roles
from gilhub.db import create_engine
from gilhub.runs.schema import runs
from gilhub.schema import api_tokens
from gilhub.users import get_user_by_name
from tests.hub.conftest import USER_PASSWORD, RunningHub
from tests.runs.helpers import PATIENCE_SECONDS, Person, notebook, person


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> dict[str, Person]:
    return {
        "alice": await person(hub, "alice"),
        "bob": await person(hub, "bob"),
        "root": await person(hub, "root", admin=True),
    }


def messages(run: dict, level: str) -> list[str]:
    return [message["text"] for message in run["messages"] if message["level"] == level]


async def test_a_parameterised_notebook_completes_with_progress_and_output_in_storage(people):
    alice = people["alice"]
    await alice.save(
        "mod/notebooks/calc.ipynb",
        notebook(
            "y = x * 2",
            "import os\nprint(name, y, bool(os.environ.get('GILHUB_RUN_TOKEN')),"
            " 'GILHUB_RUN_DB_URL' in os.environ)",
            parameters="x = 1\nname = 'nobody'",
        ),
    )
    run = await alice.start(
        "mod/notebooks/calc.ipynb", parameters={"x": 21, "name": "alice"}, kernel="python3"
    )
    assert run["status"] in ("queued", "running")

    events = []
    async with alice.api.stream("GET", f"/hub/api/runs/{run['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[-1]["status"] == "completed"
    assert [event["cells_done"] for event in events] == sorted(
        event["cells_done"] for event in events
    )

    done = (await alice.api.get(f"/hub/api/runs/{run['id']}")).json()
    assert (done["cells_done"], done["cells_total"]) == (3, 3)
    assert done["parameters"] == {"x": 21, "name": "alice"}
    assert re.fullmatch(
        r"temp/mod/notebooks/calc \d{4}-\d\d-\d\d \d\d-\d\d-\d\d\.ipynb", done["output_path"]
    )
    stored = await alice.load(done["output_path"])
    assert "alice 42 True False" in stored.decode()
    output = await alice.api.get(f"/hub/api/runs/{run['id']}/output")
    assert output.status_code == 200 and output.content == stored
    assert not messages(done, "WARNING")

    async with asyncio.timeout(PATIENCE_SECONDS):  # the token is revoked once the worker exits
        while f"run {run['id']}" in await token_notes(alice.hub):
            await asyncio.sleep(0.2)


async def token_notes(hub: RunningHub) -> list[str]:
    async with hub.app.db.connect() as conn:
        return list((await conn.execute(select(api_tokens.c.note))).scalars())


async def test_the_kernels_token_acts_as_the_runs_user_and_only_while_it_runs(people):
    ask_the_hub = (
        "import json, os, urllib.request\n"
        "request = urllib.request.Request(os.environ['GILHUB_HUB_URL'] + 'hub/api/user',"
        " headers={'Authorization': 'token ' + os.environ['GILHUB_RUN_TOKEN']})\n"
        "print('I am', json.load(urllib.request.urlopen(request))['name'])\n"
        "token = os.environ['GILHUB_RUN_TOKEN']"
    )
    alice = people["alice"]
    run = await alice.run("whoami.ipynb", notebook(ask_the_hub, "print('token:' + token)"))
    assert run["status"] == "completed", run["error"]
    output = (await alice.load(run["output_path"])).decode()
    assert "I am alice" in output
    token = re.search(r"token:(\S+?)\\n", output)[1]
    async with asyncio.timeout(PATIENCE_SECONDS):  # revoked once the worker has exited
        while (
            await alice.hub.client(headers={"Authorization": f"token {token}"}).get("/hub/api/user")
        ).status_code != 403:
            await asyncio.sleep(0.2)


async def test_a_failing_notebook_fails_with_its_cell_and_traceback_and_keeps_partial_output(
    people,
):
    alice = people["alice"]
    run = await alice.run(
        "fails.ipynb",
        notebook("a = 'reached'\nprint(a)", "raise ValueError('bad value')", "never = 1"),
    )
    assert run["status"] == "failed"
    assert run["error"]["cell"] == 1
    assert run["error"]["ename"] == "ValueError"
    assert run["error"]["evalue"] == "bad value"
    assert "ValueError" in run["error"]["traceback"]
    assert run["cells_done"] == 1
    partial = (await alice.load(run["output_path"])).decode()
    assert run["output_path"].startswith("runs/fails ")
    assert "reached" in partial and "bad value" in partial
    assert any("ValueError" in text for text in messages(run, "ERROR"))


async def test_a_notebook_without_parameters_cell_runs_with_a_warning(people):
    run = await people["alice"].run("plain.ipynb", notebook("print(x)"), parameters={"x": 5})
    assert run["status"] == "completed"
    assert any("no cell tagged 'parameters'" in text for text in messages(run, "WARNING"))


async def test_an_unknown_parameter_runs_with_a_warning(people):
    run = await people["alice"].run(
        "known.ipynb", notebook("print(x)", parameters="x = 1"), parameters={"x": 2, "zz": 3}
    )
    assert run["status"] == "completed"
    assert any("zz" in text for text in messages(run, "WARNING"))


@pytest.mark.parametrize(
    "body",
    [
        {"notebook": "known.ipynb", "parameters": "[1"},
        {"notebook": "known.ipynb", "parameters": [1, 2]},
        {"notebook": "known.ipynb", "parameters": {"not a name": 1}},
        {"notebook": "known.ipynb", "parameters": {"x": "y" * 100_000}},
        {"notebook": "known.ipynb", "source": "elsewhere"},
        {"notebook": "known.ipynb", "kernel": "bad kernel; rm"},
        {"notebook": "../escape.ipynb"},
        {"notebook": "known.ipynb", "colour": "blue"},
        {"parameters": {"x": 1}},
    ],
)
async def test_bad_requests_are_refused_and_create_no_run(people, body):
    alice = people["alice"]
    before = (await alice.api.get("/hub/api/runs")).json()["runs"]
    response = await alice.api.post("/hub/api/runs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    assert (await alice.api.get("/hub/api/runs")).json()["runs"] == before


async def test_a_body_that_is_not_json_or_a_missing_or_broken_notebook_is_refused(people):
    alice = people["alice"]
    response = await alice.api.post("/hub/api/runs", content=b"{not json")
    assert response.status_code == 400
    oversized = {"notebook": "known.ipynb", "parameters": {"x": "y" * 2_000_000}}
    assert (await alice.api.post("/hub/api/runs", json=oversized)).status_code == 413
    response = await alice.api.post("/hub/api/runs", json={"notebook": "nowhere.ipynb"})
    assert response.status_code == 404
    await alice.save("broken.ipynb", b"{not a notebook")
    response = await alice.api.post("/hub/api/runs", json={"notebook": "broken.ipynb"})
    assert response.status_code == 400 and "not a readable notebook" in response.json()["message"]


async def test_a_kernel_that_is_not_installed_is_refused_clearly(people):
    alice = people["alice"]
    await alice.save("known.ipynb", notebook("1"))
    refused = await alice.api.post(
        "/hub/api/runs", json={"notebook": "known.ipynb", "kernel": "nokernel"}
    )
    assert refused.status_code == 400
    assert "No kernel named 'nokernel'" in refused.json()["message"]
    assert "python3" in refused.json()["message"]  # what is installed


async def test_the_kernels_a_run_may_name_are_listed_for_any_user_with_runs_access(people, hub):
    """What a run form offers: the kernels the runs accept (the 400 above names the same),
    not those of the user's own server."""
    alice, bob = people["alice"], people["bob"]
    listed = await alice.api.get("/hub/api/runs/kernels")
    assert listed.status_code == 200, listed.text
    kernels = listed.json()
    python3 = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    assert python3 in kernels["kernels"]
    assert (kernels["default"], kernels["any_kernel"]) == ("python3", False)
    assert (await bob.api.get("/hub/api/runs/kernels")).json() == kernels  # nobody's own
    assert (await hub.client().get("/hub/api/runs/kernels")).status_code in (401, 403)
    async with hub.app.db.begin() as conn:
        user = await get_user_by_name(conn, "bob")
        token = (await create_token(conn, user.id, scopes=("read:repo",))).token
    no_runs = hub.client(headers={"Authorization": f"token {token}"})
    assert (await no_runs.get("/hub/api/runs/kernels")).status_code == 403
    hub.app.runs.known_kernels_only = False
    try:
        assert (await bob.api.get("/hub/api/runs/kernels")).json()["any_kernel"] is True
    finally:
        hub.app.runs.known_kernels_only = True


async def test_a_kernel_the_worker_does_not_find_fails_the_run_clearly(people):
    """Where the hub does not check kernels (users install their own)."""
    people["alice"].hub.app.runs.known_kernels_only = False
    try:
        run = await people["alice"].run("known.ipynb", notebook("1"), kernel="nokernel")
    finally:
        people["alice"].hub.app.runs.known_kernels_only = True
    assert run["status"] == "failed"
    assert "No kernel named 'nokernel'" in run["error"]["evalue"]


async def test_a_cell_that_never_ends_times_out(people):
    alice = people["alice"]
    runs = alice.hub.app.runs
    runs.cell_timeout = 3
    try:
        run = await alice.run("forever.ipynb", notebook("import time\ntime.sleep(600)"))
    finally:
        runs.cell_timeout = 600
    assert run["status"] == "failed"
    assert "Timeout" in run["error"]["ename"]


async def test_cancel_ends_the_worker_and_its_kernel(people):
    alice = people["alice"]
    await alice.save("sleepy.ipynb", notebook("print('before')", "import time\ntime.sleep(600)"))
    run = await alice.start("sleepy.ipynb")
    await alice.wait_for(run, lambda model: model["current_cell"] == 1)
    async with alice.hub.app.db.connect() as conn:
        recorded = await conn.execute(select(runs.c.worker).where(runs.c.id == run["id"]))
    worker = psutil.Process(recorded.scalar()["pid"])
    tree = [worker, *worker.children(recursive=True)]
    assert len(tree) >= 2  # the worker and its kernel

    response = await alice.api.post(f"/hub/api/runs/{run['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive
    again = await alice.api.post(f"/hub/api/runs/{run['id']}/cancel")
    assert again.status_code == 409
    cancelled = (await alice.api.get(f"/hub/api/runs/{run['id']}")).json()
    assert cancelled["status"] == "cancelled"
    partial = (await alice.load(cancelled["output_path"])).decode()
    assert "before" in partial and "KeyboardInterrupt" in partial


async def test_another_user_can_neither_see_nor_cancel_alices_run(people):
    alice, bob, root = people["alice"], people["bob"], people["root"]
    run = await alice.run("known.ipynb", notebook("1"))
    base = f"/hub/api/runs/{run['id']}"
    for path in (base, f"{base}/events", f"{base}/output"):
        assert (await bob.api.get(path)).status_code == 404
    assert (await bob.api.post(f"{base}/cancel")).status_code == 404
    assert run["id"] not in [r["id"] for r in (await bob.api.get("/hub/api/runs")).json()["runs"]]
    assert (await root.api.get(base)).status_code == 200
    everyone = (await root.api.get("/hub/api/runs?all=1")).json()["runs"]
    assert run["id"] in [r["id"] for r in everyone]


async def test_a_read_only_token_reads_runs_but_cannot_start_one(people, hub):
    async with hub.app.db.begin() as conn:
        alice = await get_user_by_name(conn, "alice")
        token = (await create_token(conn, alice.id, scopes=("read:runs",))).token
    reader = hub.client(headers={"Authorization": f"token {token}"})
    assert (await reader.get("/hub/api/runs")).status_code == 200
    response = await reader.post("/hub/api/runs", json={"notebook": "known.ipynb"})
    assert response.status_code == 403


async def test_the_pages_list_and_show_own_runs_only(people, hub):
    run = await people["alice"].run("shown.ipynb", notebook("print('shown')"))
    alice_web = await hub.login("alice", USER_PASSWORD)
    listing = await alice_web.get("/hub/runs")
    assert listing.status_code == 200 and "shown.ipynb" in listing.text
    page = await alice_web.get(f"/hub/runs/{run['id']}")
    assert page.status_code == 200
    assert "completed" in page.text and run["output_path"] in page.text
    bob_web = await hub.login("bob", USER_PASSWORD)
    assert (await bob_web.get(f"/hub/runs/{run['id']}")).status_code == 404
    assert "shown.ipynb" not in (await bob_web.get("/hub/runs")).text


async def test_a_huge_output_is_bounded_and_said_so(people):
    alice = people["alice"]
    runs_service = alice.hub.app.runs
    runs_service.max_output_bytes = 10_000
    try:
        run = await alice.run("loud.ipynb", notebook("print('x' * 2_000_000)", "print('after')"))
    finally:
        runs_service.max_output_bytes = 1_000_000
    assert run["status"] == "completed"
    assert any("dropped" in text for text in messages(run, "WARNING"))
    output = await alice.load(run["output_path"])
    assert len(output) < 100_000
    assert b"bytes of output dropped" in output and b"after" in output


async def test_runs_over_the_per_user_limit_wait_in_the_queue(people):
    bob = people["bob"]
    runs_service = bob.hub.app.runs
    runs_service.max_runs_per_user = 1
    try:
        await bob.save("wait.ipynb", notebook("import time\ntime.sleep(600)"))
        first = await bob.start("wait.ipynb")
        await bob.wait_for(first, lambda model: model["status"] == "running")
        second = await bob.start("wait.ipynb")
        waiting = (await bob.api.get(f"/hub/api/runs/{second['id']}")).json()
        assert waiting["status"] == "queued" and waiting["queue_position"] == 1
        await bob.api.post(f"/hub/api/runs/{first['id']}/cancel")
        await bob.wait_for(second, lambda model: model["status"] == "running")
        await bob.api.post(f"/hub/api/runs/{second['id']}/cancel")
    finally:
        runs_service.max_runs_per_user = 2


async def test_a_run_over_its_time_limit_is_ended_and_failed(people):
    alice = people["alice"]
    runs_service = alice.hub.app.runs
    runs_service.run_timeout = 5
    try:
        run = await alice.run("long.ipynb", notebook("import time\ntime.sleep(600)"))
    finally:
        runs_service.run_timeout = 3600
    assert run["status"] == "failed"
    assert "longer than its limit of 5 s" in run["error"]["evalue"]


def test_unknown_token_scopes_are_refused_in_the_configuration(hub):
    with pytest.raises(ScopeError):
        hub.app.runs.token_scopes = ["read:everything"]


async def test_a_users_database_role_sees_and_changes_only_its_own_runs(people, hub):
    alice, bob = people["alice"], people["bob"]
    bobs = await bob.run("mine.ipynb", notebook("1"))
    await alice.run("mine.ipynb", notebook("1"))
    password = await roles.issue_role_password(hub.app.db, alice.role)
    engine = create_engine(roles.user_database_url(hub.app.db_url, alice.role, password))
    try:
        async with engine.begin() as conn:
            owners = set((await conn.execute(select(runs.c.owner))).scalars())
            changed = await conn.execute(
                update(runs).where(runs.c.id == bobs["id"]).values(status="cancelled")
            )
            assert changed.rowcount == 0
            with pytest.raises(DBAPIError):
                await conn.execute(update(runs).values(owner=bob.role))
    finally:
        await engine.dispose()
    assert owners == {alice.role}


async def test_a_notebooks_declared_parameters_are_read_for_a_form(people):
    alice, bob = people["alice"], people["bob"]
    await alice.save(
        "form.ipynb", notebook("print(x)", parameters="x: int = 1  # how many\nname = 'a'")
    )
    found = await alice.api.get("/hub/api/runs/parameters", params={"notebook": "form.ipynb"})
    assert found.status_code == 200, found.text
    declared = found.json()
    assert declared["has_parameters_cell"] is True
    assert declared["parameters"]["x"]["inferred_type_name"] == "int"
    assert declared["parameters"]["x"]["default"] == "1"
    assert declared["parameters"]["x"]["help"] == "how many"
    assert set(declared["parameters"]) == {"x", "name"}
    other = await bob.api.get("/hub/api/runs/parameters", params={"notebook": "form.ipynb"})
    assert other.status_code == 404  # Bob's storage has no such notebook


async def test_a_repository_notebook_runs_at_the_version_asked_for(people):
    alice = people["alice"]
    for number in (1, 2):
        await alice.save("shared.ipynb", notebook(f"print('version {number}')"))
        pushed = await alice.api.post(
            "/hub/api/repo/push", json={"source": "shared.ipynb", "message": f"v{number}"}
        )
        assert pushed.status_code in (200, 201), pushed.text
    path = pushed.json()["entry"]["path"]
    run = await alice.finished(await alice.start(path, source="repository", version=1))
    assert run["status"] == "completed" and run["version"] == 1
    assert "version 1" in (await alice.load(run["output_path"])).decode()
    missing = await alice.api.post(
        "/hub/api/runs", json={"notebook": path, "source": "repository", "version": 9}
    )
    assert missing.status_code == 404


async def test_a_run_goes_on_while_its_database_login_is_lost_and_catches_up(people, hub):
    """The worker's connections are cut and its login refused while a cell runs (as when
    the database is away); its progress is written once it can log in again."""
    alice = people["alice"]
    await alice.save("patient.ipynb", notebook("import time\ntime.sleep(4)", "print('done')"))
    run = await alice.start("patient.ipynb")
    await alice.wait_for(run, lambda model: model["current_cell"] == 0)
    async with hub.app.db.connect() as conn:
        prefix = (await conn.execute(text("SELECT role_prefix FROM contents.settings"))).scalar()
        role = f'"{prefix}_run_{run["id"]}"'
        await conn.execute(text(f"ALTER ROLE {role} NOLOGIN"))
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
            {"r": role.strip('"')},
        )
        await conn.commit()
        await asyncio.sleep(6)  # the first cell ends meanwhile: its progress cannot be written
        lagging = (await alice.api.get(f"/hub/api/runs/{run['id']}")).json()
        await conn.execute(text(f"ALTER ROLE {role} LOGIN"))
        await conn.commit()
    assert lagging["cells_done"] == 0
    done = await alice.finished(run)
    assert done["status"] == "completed", done["error"]
    assert (done["cells_done"], done["cells_total"]) == (2, 2)
