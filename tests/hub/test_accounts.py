"""The accounts service: the same effects from the admin page, the REST API and the
command line; user row and database role in one transaction; renames; one-time passwords.

The hub here remembers resolved cookies and tokens for an hour, so a session that
stops working shows that the change evicted the cache (not that an entry expired).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection
from traitlets.config import Config

from gilhub.accounts import create_account, delete_account
from gilhub.contents import query
from gilhub.users import User, get_user_by_name
from tests.hub.conftest import USER_PASSWORD, RunningHub, post_form, running_hub
from tests.hub.servers_harness import start_and_wait
from tests.hub.test_auth import login_form
from tests.hub.test_cli import gilhub

FRONT_ENDS = ["page", "api", "cli"]
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


class InjectedFailure(Exception):
    """A step that fails inside an account transaction."""


@pytest.fixture(scope="module")
async def hub(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator:
    config = Config()
    config.GilHub.auth_cache_ttl = 3600.0
    async with running_hub(database_url, tmp_path_factory.mktemp("hub"), config) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    """Wait (polling, no time asserted) until ``check`` holds."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def refused(client: httpx.AsyncClient, **kwargs) -> bool:
    return (await client.get("/hub/api/user", **kwargs)).status_code == 403


async def role_exists(conn: AsyncConnection, role: str) -> bool:
    found = await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


async def as_admin(hub: RunningHub) -> httpx.AsyncClient:
    return await hub.login(hub.admin_name, hub.admin_password)


async def admin_api(hub: RunningHub) -> httpx.AsyncClient:
    token = await hub.token_for(hub.admin_name)
    return hub.client(headers={"Authorization": f"token {token}"})


async def reset_password(hub: RunningHub, front_end: str, user: User, workdir: Path) -> None:
    if front_end == "page":
        admin = await as_admin(hub)
        path = f"/hub/admin/users/{user.name}/password"
        response = await post_form(admin, path, {"_xsrf": hub.xsrf_token(admin)})
        assert response.status_code == 200 and "one-time password" in response.text
    elif front_end == "api":
        response = await (await admin_api(hub)).patch(
            f"/hub/api/users/{user.name}", json={"password": "a-brand-new-password"}
        )
        assert response.status_code == 200, response.text
    else:
        result = await gilhub("user", "password", user.name, cwd=workdir)
        assert result.returncode == 0, result.stderr


async def remove(hub: RunningHub, front_end: str, user: User, workdir: Path) -> None:
    if front_end == "page":
        admin = await as_admin(hub)
        path = f"/hub/admin/users/{user.name}/remove"
        response = await post_form(admin, path, {"_xsrf": hub.xsrf_token(admin)})
        assert response.status_code == 200 and f"Removed {user.name}" in response.text
    elif front_end == "api":
        response = await (await admin_api(hub)).delete(f"/hub/api/users/{user.name}")
        assert response.status_code == 204, response.text
    else:
        result = await gilhub("user", "remove", user.name, cwd=workdir)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_a_password_reset_ends_every_session_whichever_front_end(
    hub: RunningHub, workdir: Path, front_end: str
) -> None:
    user = await hub.add_user()
    sessions = [await hub.login(user.name, USER_PASSWORD) for _ in range(2)]
    for session in sessions:
        assert not await refused(session)  # and now remembered by the hub's cache
    await reset_password(hub, front_end, user, workdir)
    for session in sessions:
        await eventually(lambda session=session: refused(session))
    old = await login_form(hub.client(), hub, user.name, USER_PASSWORD)
    assert old.status_code == 403


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_removal_stops_the_server_and_ends_sessions_and_tokens_whichever_front_end(
    hub: RunningHub, workdir: Path, front_end: str
) -> None:
    user = await hub.add_user()
    session = await hub.login(user.name, USER_PASSWORD)
    token = {"Authorization": f"token {await hub.token_for(user.name)}"}
    async with hub.app.db.begin() as conn:
        await query.write_file(conn, user.db_role, "work.ipynb", NOTEBOOK)
    events = await start_and_wait(hub.app, user)
    assert events[-1]["ready"], events
    upstream = hub.app.servers.upstream(user.name)
    assert not await refused(session) and not await refused(hub.client(), headers=token)

    await remove(hub, front_end, user, workdir)

    async def server_gone() -> bool:
        try:
            socket.create_connection((upstream.host, upstream.port), timeout=1).close()
        except OSError:
            return hub.app.servers.status(user.name).state == "stopped"
        return False

    await eventually(server_gone)
    await eventually(lambda: refused(session))
    assert await refused(hub.client(), headers=token)
    async with hub.app.db.connect() as conn:
        assert await get_user_by_name(conn, user.name) is None
        assert not await role_exists(conn, user.db_role)
        assert await query.read_file(conn, user.db_role, "work.ipynb") is None


async def test_a_deletion_that_fails_midway_leaves_user_role_and_notebooks(
    hub: RunningHub,
) -> None:
    user = await hub.add_user()
    async with hub.app.db.begin() as conn:
        await query.write_file(conn, user.db_role, "keep/me.ipynb", NOTEBOOK)
    with pytest.raises(InjectedFailure):
        async with hub.app.db.begin() as conn:
            assert await delete_account(conn, user)
            assert not await role_exists(conn, user.db_role)  # dropped, in the transaction
            raise InjectedFailure
    async with hub.app.db.connect() as conn:
        assert await get_user_by_name(conn, user.name) == user
        assert await role_exists(conn, user.db_role)
        kept = await query.read_file(conn, user.db_role, "keep/me.ipynb")
    assert kept is not None and kept.content == NOTEBOOK
    assert (await login_form(hub.client(), hub, user.name, USER_PASSWORD)).status_code == 303


async def test_a_creation_that_fails_midway_leaves_no_user_role_or_storage(
    hub: RunningHub,
) -> None:
    name = hub.unique_name("half")
    with pytest.raises(InjectedFailure):
        async with hub.app.db.begin() as conn:
            user = await create_account(conn, name)
            assert await role_exists(conn, user.db_role)  # created, in the transaction
            raise InjectedFailure
    async with hub.app.db.connect() as conn:
        assert await get_user_by_name(conn, name) is None
        assert not await role_exists(conn, user.db_role)
        roots = "SELECT count(*) FROM contents.directories WHERE owner = :role"
        assert (await conn.execute(text(roots), {"role": user.db_role})).scalar_one() == 0
    created, _ = await hub.app.accounts.create(name, USER_PASSWORD)  # the name is free
    assert created.db_role == user.db_role


async def test_renaming_through_the_api_moves_notebooks_and_login(hub: RunningHub) -> None:
    user = await hub.add_user()
    taken = await hub.add_user()
    async with hub.app.db.begin() as conn:
        await query.write_file(conn, user.db_role, "mine.ipynb", NOTEBOOK)
    api = await admin_api(hub)
    clash = await api.patch(f"/hub/api/users/{user.name}", json={"name": taken.name})
    assert clash.status_code == 409
    bad = await api.patch(f"/hub/api/users/{user.name}", json={"name": "Not Valid"})
    assert bad.status_code == 400
    new_name = hub.unique_name("renamed")
    response = await api.patch(f"/hub/api/users/{user.name}", json={"name": new_name})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == new_name
    assert (await api.get(f"/hub/api/users/{user.name}")).status_code == 404
    async with hub.app.db.connect() as conn:
        renamed = await get_user_by_name(conn, new_name)
        assert renamed is not None and renamed.id == user.id
        assert not await role_exists(conn, user.db_role)
        moved = await query.read_file(conn, renamed.db_role, "mine.ipynb")
    assert moved is not None and moved.content == NOTEBOOK
    assert (await login_form(hub.client(), hub, new_name, USER_PASSWORD)).status_code == 303


async def test_renaming_from_the_page_and_the_command_line(hub: RunningHub, workdir: Path) -> None:
    user = await hub.add_user()
    admin = await as_admin(hub)
    by_page = hub.unique_name("paged")
    response = await post_form(
        admin,
        f"/hub/admin/users/{user.name}/rename",
        {"_xsrf": hub.xsrf_token(admin), "new_name": by_page},
    )
    assert response.status_code == 200 and f"is now {by_page}" in response.text
    by_cli = hub.unique_name("typed")
    result = await gilhub("user", "rename", by_page, by_cli, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (await login_form(hub.client(), hub, by_cli, USER_PASSWORD)).status_code == 303


async def test_only_admins_rename_remove_or_reset_others(hub: RunningHub) -> None:
    mallory, victim = await hub.add_user(), await hub.add_user()
    client = await hub.login(mallory.name, USER_PASSWORD)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(mallory.name)}"})
    for target in (victim.name, mallory.name):
        path = f"/hub/api/users/{target}"
        assert (await api.patch(path, json={"name": "taken-over"})).status_code == 403
        assert (await api.patch(path, json={"password": "x" * 12})).status_code == 403
        assert (await api.delete(path)).status_code == 403
        for action in ("rename", "password", "remove", "admin"):
            form = {"_xsrf": hub.xsrf_token(client), "new_name": "taken-over", "value": "1"}
            response = await client.post(f"/hub/admin/users/{target}/{action}", data=form)
            assert response.status_code == 403
    async with hub.app.db.connect() as conn:
        assert await get_user_by_name(conn, victim.name) == victim
        assert await get_user_by_name(conn, "taken-over") is None


async def test_nobody_removes_or_demotes_themselves(hub: RunningHub) -> None:
    api = await admin_api(hub)
    me = f"/hub/api/users/{hub.admin_name}"
    assert (await api.delete(me)).status_code == 400
    assert (await api.patch(me, json={"admin": False})).status_code == 400
    assert (await api.get(me)).json()["admin"] is True


async def test_a_one_time_password_must_be_changed_before_anything_else(hub: RunningHub) -> None:
    name = hub.unique_name("newcomer")
    created = await (await admin_api(hub)).post(f"/hub/api/users/{name}", json={})
    assert created.status_code == 201
    one_time = created.json()["password"]
    client = await hub.login(name, one_time)
    home = await client.get("/hub/home")
    assert home.status_code == 302
    assert home.headers["Location"].startswith("/hub/change-password?next=")
    assert (await client.get("/hub/api/user")).status_code == 403
    assert (await client.get(f"/user/{name}/lab")).status_code == 302
    page = await client.get("/hub/change-password")
    assert page.status_code == 200 and "one-time password" in page.text
    form = {"_xsrf": hub.xsrf_token(client), "current_password": one_time}
    form |= {"new_password": "my-own-password", "new_password_repeat": "my-own-password"}
    assert (await client.post("/hub/change-password", data=form)).status_code == 303
    assert (await client.get("/hub/home")).status_code == 200
    assert (await client.get("/hub/api/user")).json()["name"] == name


async def test_the_first_admin_gets_a_one_time_password(hub: RunningHub) -> None:
    async with hub.app.db.connect() as conn:
        first = await get_user_by_name(conn, "admin")
    assert first is not None and first.is_admin and first.must_change_password
