"""What a form's POST shows on the page after its redirect travels in a sealed cookie
(gilhub.handlers.flash): any hub on the database shows it, nobody else can read, forge or
use it, and it is shown once."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from gilhub.handlers import flash
from tests.hub.conftest import USER_PASSWORD, RunningHub, running_hub

NEW_TOKEN = re.compile(r'<p class="secret" id="new-token">([^<]+)</p>')


async def logged_in(hub: RunningHub) -> httpx.AsyncClient:
    user = await hub.add_user()
    return await hub.login(user.name, USER_PASSWORD)


async def create_token(hub: RunningHub, client: httpx.AsyncClient) -> httpx.Response:
    """Post the token form; the 303 to the token page, not followed."""
    posted = await client.post("/hub/token", data={"_xsrf": hub.xsrf_token(client), "note": "x"})
    assert posted.status_code == 303, posted.text
    assert posted.headers["Location"] == "/hub/token"
    return posted


def shown_token(page: httpx.Response) -> str | None:
    match = NEW_TOKEN.search(page.text)
    return match.group(1) if match else None


async def test_the_notice_is_shown_by_another_hub_on_the_same_database(
    hub: RunningHub, database_url, tmp_path: Path
) -> None:
    """The POST reaches one hub, the page after it another (or the same one restarted)."""
    client = await logged_in(hub)
    await create_token(hub, client)
    async with running_hub(database_url, tmp_path / "second-hub") as second:
        cookies = {cookie.name: cookie.value for cookie in client.cookies.jar}
        page = await second.client(cookies=cookies).get("/hub/token")
    token = shown_token(page)
    assert token is not None, page.text
    api = hub.client(headers={"Authorization": f"token {token}"})
    assert (await api.get("/hub/api/user")).status_code == 200


async def test_the_notice_cookie_is_sealed_scoped_short_lived_and_shown_once(
    hub: RunningHub,
) -> None:
    client = await logged_in(hub)
    posted = await create_token(hub, client)
    set_cookie = next(
        header
        for header in posted.headers.get_list("Set-Cookie")
        if header.startswith(f"{flash.COOKIE}=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "max-age"} <= attributes
    assert f"Max-Age={flash.MAX_AGE}" in set_cookie and "Path=/hub/" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert len(set_cookie) < 4096

    page = await client.get("/hub/token")
    token = shown_token(page)
    assert token is not None
    assert token not in set_cookie  # encrypted, not only signed
    assert flash.COOKIE not in client.cookies  # cleared when shown
    assert shown_token(await client.get("/hub/token")) is None


async def test_a_notice_waits_for_its_own_page(hub: RunningHub) -> None:
    """Another of my pages loading meanwhile (another tab) leaves it alone."""
    client = await logged_in(hub)
    await create_token(hub, client)
    assert (await client.get("/hub/home")).status_code == 200
    assert shown_token(await client.get("/hub/token")) is not None


def genuine_cookie(client: httpx.AsyncClient) -> str:
    return client.cookies[flash.COOKIE]


async def test_a_forged_or_altered_notice_cookie_is_ignored_and_cleared(hub: RunningHub) -> None:
    client = await logged_in(hub)
    await create_token(hub, client)
    genuine = genuine_cookie(client)
    forger = Fernet(Fernet.generate_key())
    forged = forger.encrypt(b'{"user":1,"path":"/hub/token","context":{"new_token":"forged"}}')
    altered = genuine[:-6] + ("A" if genuine[-6] != "A" else "B") + genuine[-5:]
    for bad in (forged.decode(), altered, "not-a-sealed-message", ""):
        client.cookies.set(flash.COOKIE, bad, domain="127.0.0.1", path="/hub/")
        page = await client.get("/hub/token")
        assert page.status_code == 200
        assert shown_token(page) is None
        assert "forged" not in page.text
        assert not client.cookies.get(flash.COOKIE)  # of no use: cleared


async def test_another_users_notice_cookie_shows_them_nothing(hub: RunningHub) -> None:
    alice = await logged_in(hub)
    await create_token(hub, alice)
    alices_notice = genuine_cookie(alice)
    bob = await logged_in(hub)
    bob.cookies.set(flash.COOKIE, alices_notice, domain="127.0.0.1", path="/hub/")
    page = await bob.get("/hub/token")
    assert page.status_code == 200
    assert shown_token(page) is None
    cleared = SimpleCookie(", ".join(page.headers.get_list("Set-Cookie")))
    assert flash.COOKIE in cleared  # of no use to anyone here: cleared
    assert shown_token(await alice.get("/hub/token")) is not None  # still hers


async def test_a_notice_is_text_escaped_in_the_page(hub: RunningHub) -> None:
    client = await logged_in(hub)
    script = '<script>alert("x")</script>'
    posted = await client.post(
        "/hub/token", data={"_xsrf": hub.xsrf_token(client), "scopes": script}
    )
    assert posted.status_code == 303
    page = await client.get(posted.headers["Location"])
    assert "&lt;script&gt;" in page.text
    assert "<script>alert" not in page.text
