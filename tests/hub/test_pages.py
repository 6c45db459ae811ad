"""The hub's HTML pages: dashboard, admin, spawn flow, errors — as a browser sees them."""

from __future__ import annotations

import asyncio
import os
import re

import httpx
import psycopg
import pytest
from psycopg import sql

from gilhub.servers import ServerState
from tests.hub.conftest import USER_PASSWORD, RunningHub, post_form, running_hub
from tests.hub.servers_harness import server_python

HTML_NAME = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
async def admin(hub: RunningHub) -> httpx.AsyncClient:
    return await hub.login(hub.admin_name, hub.admin_password)


async def logged_in_user(hub: RunningHub) -> tuple[str, httpx.AsyncClient]:
    user = await hub.add_user()
    return user.name, await hub.login(user.name, USER_PASSWORD)


def form(hub: RunningHub, client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    return {"_xsrf": hub.xsrf_token(client), **fields}


def shown_secret(page: str) -> str:
    match = re.search(r'<p class="secret" id="secret">([^<]+)</p>', page)
    assert match, page
    return match.group(1)


async def test_root_leads_to_the_dashboard(hub: RunningHub) -> None:
    for path in ("/", "/hub/"):
        response = await hub.client().get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "/hub/home"


async def test_dashboard_shows_my_stopped_server(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    page = await client.get("/hub/home")
    assert page.status_code == 200
    assert "state-stopped" in page.text
    assert f'action="/hub/spawn/{name}"' in page.text
    assert "/hub/admin" not in page.text  # not an admin
    assert "/hub/static/css/gilhub.css" in page.text
    assert (await client.get("/hub/static/css/gilhub.css")).status_code == 200


async def test_unknown_page_is_a_404_page_without_reflection(hub: RunningHub) -> None:
    response = await hub.client().get("/hub/no-such-page/<script>x</script>")
    assert response.status_code == 404
    assert "<script>x" not in response.text
    assert "404 Not Found" in response.text


async def test_admin_page_is_for_admins_only(hub: RunningHub, admin: httpx.AsyncClient) -> None:
    _, client = await logged_in_user(hub)
    refused = await client.get("/hub/admin")
    assert refused.status_code == 403
    assert "administrators" in refused.text
    page = await admin.get("/hub/admin")
    assert page.status_code == 200
    assert f'data-user="{hub.admin_name}"' in page.text


async def test_admin_adds_a_user_with_a_generated_password(
    hub: RunningHub, admin: httpx.AsyncClient
) -> None:
    name = hub.unique_name("new")
    posted = await admin.post("/hub/admin/users", data=form(hub, admin, username=name))
    assert posted.status_code == 303  # POST/redirect/GET: the address bar shows the page
    page = await admin.get(posted.headers["Location"])
    assert page.status_code == 200
    assert f"Added {name}." in page.text
    password = shown_secret(page.text)
    assert (await hub.login(name, password)).cookies
    assert password not in (await admin.get(posted.headers["Location"])).text  # shown once
    assert password not in (await admin.get("/hub/admin")).text
    assert password not in posted.headers["Location"]
    again = await post_form(admin, "/hub/admin/users", form(hub, admin, username=name))
    assert "already exists" in again.text


@pytest.mark.parametrize("bad_name", ["x" * 10_000, HTML_NAME])
async def test_admin_add_rejects_bad_names_escaped(
    hub: RunningHub, admin: httpx.AsyncClient, bad_name: str
) -> None:
    page = await post_form(admin, "/hub/admin/users", form(hub, admin, username=bad_name))
    assert "Invalid user name" in page.text
    assert HTML_NAME not in page.text and "x" * 100 not in page.text


async def test_admin_resets_a_password(hub: RunningHub, admin: httpx.AsyncClient) -> None:
    name, client = await logged_in_user(hub)
    page = await post_form(admin, f"/hub/admin/users/{name}/password", form(hub, admin))
    new_password = shown_secret(page.text)
    assert (await client.get("/hub/api/user")).status_code == 403  # sessions ended
    assert (await hub.login(name, new_password)).cookies


async def test_admin_grants_and_revokes_admin(hub: RunningHub, admin: httpx.AsyncClient) -> None:
    name, client = await logged_in_user(hub)
    granted = await post_form(admin, f"/hub/admin/users/{name}/admin", form(hub, admin, value="1"))
    assert f"{name} is now an admin." in granted.text
    assert (await client.get("/hub/admin")).status_code == 200
    await admin.post(f"/hub/admin/users/{name}/admin", data=form(hub, admin, value="0"))
    assert (await client.get("/hub/admin")).status_code == 403
    own = await post_form(
        admin, f"/hub/admin/users/{hub.admin_name}/admin", form(hub, admin, value="0")
    )
    assert 'class="error"' in own.text


async def test_admin_removes_a_user(hub: RunningHub, admin: httpx.AsyncClient) -> None:
    name, client = await logged_in_user(hub)
    page = await post_form(admin, f"/hub/admin/users/{name}/remove", form(hub, admin))
    assert f"Removed {name}." in page.text
    assert f'data-user="{name}"' not in page.text
    assert (await client.get("/hub/home")).status_code == 302  # logged out with the account
    assert f"admin/users/{hub.admin_name}/remove" not in page.text  # not offered for oneself
    myself = await post_form(admin, f"/hub/admin/users/{hub.admin_name}/remove", form(hub, admin))
    assert "You cannot remove your own account." in myself.text


async def test_spawn_pending_page_offers_to_start_a_stopped_server(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    page = await client.get(f"/hub/spawn-pending/{name}", params={"next": f"/user/{name}/lab"})
    assert page.status_code == 200
    assert "Your server is not running" in page.text
    assert "next=%2Fuser%2F" in page.text
    other, _ = await logged_in_user(hub)
    assert (await client.get(f"/hub/spawn-pending/{other}")).status_code == 403


async def test_user_redirect_goes_to_my_own_server(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    response = await client.get("/hub/user-redirect/lab/tree/a.ipynb?reset")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/user/{name}/lab/tree/a.ipynb?reset"
    anonymous = await hub.client().get("/hub/user-redirect/lab")
    assert anonymous.headers["Location"].startswith("/hub/login?next=")


async def test_start_watch_and_stop_from_the_pages(
    hub: RunningHub, admin: httpx.AsyncClient
) -> None:
    name, client = await logged_in_user(hub)
    started = await client.post(f"/hub/spawn/{name}", data=form(hub, client))
    assert started.status_code == 303
    assert started.headers["Location"].startswith(f"/hub/spawn-pending/{name}?next=")
    pending = await client.get(started.headers["Location"])
    if pending.status_code == 200:  # still starting: the page follows the progress stream
        assert f"/hub/api/users/{name}/server/progress" in pending.text
    async with asyncio.timeout(90):
        while hub.app.servers.status(name).state != ServerState.RUNNING:
            await asyncio.sleep(0.1)
    ready = await client.get(started.headers["Location"])
    assert ready.status_code == 302 and ready.headers["Location"] == f"/user/{name}/lab"
    home = await client.get("/hub/home")
    assert "state-running" in home.text and f'href="/user/{name}/lab"' in home.text
    await admin_may_open_only_with_admin_access(hub, admin, name)
    await only_owner_and_admins_read_the_log(hub, admin, name, client)
    stopped = await client.post(f"/hub/stop/{name}", data=form(hub, client))
    assert stopped.status_code == 303
    async with asyncio.timeout(60):
        while hub.app.servers.status(name).state != ServerState.STOPPED:
            await asyncio.sleep(0.1)


async def test_failed_start_shows_the_log_tail(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    failing = [server_python(), "-c", "print('<b>gilhub-test-boom</b>'); raise SystemExit(3)"]
    spawner_config = hub.app.config.LocalProcessSpawner
    saved = spawner_config.get("cmd")
    spawner_config.cmd = failing
    try:
        await client.post(f"/hub/spawn/{name}", data=form(hub, client))
        async with asyncio.timeout(60):
            while hub.app.servers.status(name).state != ServerState.STOPPED:
                await asyncio.sleep(0.1)
    finally:
        if saved is None:
            del spawner_config["cmd"]
        else:
            spawner_config.cmd = saved
    page = await client.get(f"/hub/spawn-pending/{name}")
    assert page.status_code == 500
    assert "could not start" in page.text
    assert "&lt;b&gt;gilhub-test-boom&lt;/b&gt;" in page.text  # the log, escaped
    assert "Try again" in page.text
    home = await client.get("/hub/home")
    assert "The last start failed" in home.text and ">Restart<" in home.text


async def test_pages_cannot_be_framed_by_other_sites_nor_cached(hub: RunningHub) -> None:
    response = await hub.client().get("/hub/login")
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Cache-Control"] == "no-store"


async def test_database_gone_is_a_503_not_a_traceback(postgres, tmp_path) -> None:
    name = f"gilhub_gone_{os.getpid()}"
    conninfo = postgres.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    async with running_hub(postgres.url.set(database=name), tmp_path) as hub:
        admin = await hub.login(hub.admin_name, hub.admin_password)
        api = hub.client(headers={"Authorization": f"token {await hub.token_for(hub.admin_name)}"})
        await api.get("/hub/api/user")  # the token is now remembered
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        page = await admin.get("/hub/admin")
        assert page.status_code == 503
        assert "The database is not answering" in page.text
        assert "Traceback" not in page.text
        listing = await api.get("/hub/api/users")
        assert listing.status_code == 503
        assert listing.json()["message"].startswith("The database is not answering")
        assert (await hub.client().get("/hub/health")).status_code == 503


async def test_token_page_creates_a_token_shown_once_and_revokes_it(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    page = await post_form(
        client, "/hub/token", form(hub, client, note="<i>culler</i>", expires_in_days="7")
    )
    assert page.status_code == 200
    token = re.search(r'<p class="secret" id="new-token">([^<]+)</p>', page.text).group(1)
    assert "&lt;i&gt;culler&lt;/i&gt;" in page.text
    api = hub.client(headers={"Authorization": f"token {token}"})
    assert (await api.get("/hub/api/user")).json()["name"] == name
    listing = await client.get("/hub/token")
    assert token not in listing.text
    token_id = re.search(r'data-token-id="(\d+)"', listing.text).group(1)
    revoked = await post_form(client, f"/hub/token/{token_id}/revoke", form(hub, client))
    assert "Token revoked." in revoked.text
    assert (await api.get("/hub/api/user")).status_code == 403
    again = await client.post(f"/hub/token/{token_id}/revoke", data=form(hub, client))
    assert again.status_code == 404


async def admin_may_open_only_with_admin_access(
    hub: RunningHub, admin: httpx.AsyncClient, name: str
) -> None:
    """ "Open" on another's running server would be a 403 without admin_access: not offered."""
    page = (await admin.get("/hub/admin")).text
    assert f'href="/user/{name}/lab"' not in page
    assert f"only {name} can open it" in page
    hub.app.admin_access = True
    try:
        assert f'href="/user/{name}/lab"' in (await admin.get("/hub/admin")).text
    finally:
        hub.app.admin_access = False


async def only_owner_and_admins_read_the_log(
    hub: RunningHub, admin: httpx.AsyncClient, name: str, owner: httpx.AsyncClient
) -> None:
    mine = await owner.get(f"/hub/spawn-log/{name}")
    assert mine.status_code == 200 and "Log of your server" in mine.text
    assert "ServerApp" in mine.text  # jupyter_server's own start-up lines
    assert (await admin.get(f"/hub/spawn-log/{name}")).status_code == 200
    _, someone_else = await logged_in_user(hub)
    assert (await someone_else.get(f"/hub/spawn-log/{name}")).status_code == 403
    assert (await hub.client().get(f"/hub/spawn-log/{name}")).status_code == 302  # log in


async def test_each_person_chooses_the_interface_their_server_opens_in(hub: RunningHub) -> None:
    name, client = await logged_in_user(hub)
    home = await client.get("/hub/home")
    assert home.text.count("<h2>Services</h2>") == 0  # the header has those links already
    assert 'value="lab" checked' in home.text  # the hub's landing_path until one chooses
    chosen = await post_form(client, "/hub/interface", form(hub, client, interface="tree"))
    assert "Your server opens in Notebook." in chosen.text
    assert 'value="tree" checked' in chosen.text
    started = await client.post(f"/hub/spawn/{name}", data=form(hub, client))
    try:
        assert started.headers["Location"].endswith(f"?next=%2Fuser%2F{name}%2Ftree")
        async with asyncio.timeout(90):
            while hub.app.servers.status(name).state != ServerState.RUNNING:
                await asyncio.sleep(0.1)
        home = await client.get("/hub/home")
        assert f'href="/user/{name}/tree"' in home.text  # Open
        root = await client.get(f"/user/{name}/")  # the server's own default, too
        assert root.headers["Location"].startswith(f"/user/{name}/tree")
        notebook = await client.get(f"/user/{name}/tree")
        assert notebook.status_code == 200 and "Notebook" in notebook.text  # Notebook 7
    finally:
        await hub.app.servers.stop(await hub.app.accounts.get(name))
    _, other = await logged_in_user(hub)  # one person's choice is theirs alone
    assert 'value="lab" checked' in (await other.get("/hub/home")).text
    bad = await client.post("/hub/interface", data=form(hub, client, interface="../admin"))
    assert bad.status_code == 400 and "The interface is one of: lab, tree." in bad.text
    assert (await client.post("/hub/interface", data={"interface": "lab"})).status_code == 403
