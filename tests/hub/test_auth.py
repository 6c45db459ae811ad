"""Login, sessions, throttling, XSRF, ``next=`` and tokens against a real hub."""

from __future__ import annotations

import html

import httpx
import pytest
from sqlalchemy import text
from traitlets.config import Config

from gilhub.auth.redirects import is_local_path, safe_next
from gilhub.auth.sessions import purge_expired_sessions
from gilhub.handlers.base import SESSION_COOKIE
from tests.hub.conftest import RunningHub, post_form, running_hub

OFF_SITE_TARGETS = [
    "https://other.domain",
    "//other.domain",
    "///x",
    "\\\\other.domain",
    "/\\other.domain",
    "ftp://x",
    "/\t/other.domain",
    "javascript:alert(1)",
    "",
]


async def login_form(
    client: httpx.AsyncClient, hub: RunningHub, name: str, password: str, **params
):
    await client.get("/hub/login")
    return await client.post(
        "/hub/login",
        params=params,
        data={"username": name, "password": password, "_xsrf": hub.xsrf_token(client)},
    )


@pytest.mark.parametrize("target", OFF_SITE_TARGETS)
def test_off_site_next_targets_are_refused(target: str) -> None:
    assert not is_local_path(target)


@pytest.mark.parametrize("target", ["/hub/home", "/user/alice/lab?reset", "/hub/bib#key"])
def test_local_next_targets_are_allowed(target: str) -> None:
    assert is_local_path(target)


def test_a_local_next_target_is_percent_encoded_for_the_location_header() -> None:
    assert safe_next('/user/a/tree/"><b> x.ipynb?q=1#top', "/hub/home") == (
        "/user/a/tree/%22%3E%3Cb%3E%20x.ipynb?q=1#top"
    )
    assert safe_next("/hub/bib?q=caf%C3%A9", "/hub/home") == "/hub/bib?q=caf%C3%A9"


async def test_login_sets_a_protected_session_cookie(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = hub.client()
    response = await login_form(client, hub, user.name, "a-good-password")
    assert response.status_code == 303
    assert response.headers["Location"] == "/hub/home"
    set_cookie = next(
        value
        for value in response.headers.get_list("Set-Cookie")
        if value.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # plain http
    me = await client.get("/hub/api/user")
    assert me.status_code == 200
    assert me.json()["name"] == user.name
    assert me.json()["last_activity"].endswith("Z")  # logging in is activity


async def test_session_is_stored_hashed(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    cookie = client.cookies[SESSION_COOKIE]
    async with hub.app.db.connect() as conn:
        stored = (await conn.execute(text("SELECT id_hash FROM login_sessions"))).scalars().all()
    session_id = cookie.split("|")[-2] if "|" in cookie else cookie
    assert stored and all(session_id not in value for value in stored)


async def test_user_name_is_case_insensitive_at_login(hub: RunningHub) -> None:
    user = await hub.add_user()
    response = await login_form(hub.client(), hub, user.name.upper(), "a-good-password")
    assert response.status_code == 303


@pytest.mark.parametrize("wrong", ["wrong-password", None])
async def test_wrong_credentials_get_one_generic_message(
    hub: RunningHub, wrong: str | None
) -> None:
    user = await hub.add_user()
    name, password = (user.name, wrong) if wrong else ("nobody-here", "a-good-password")
    response = await login_form(hub.client(), hub, name, password)
    assert response.status_code == 403
    assert "Invalid username or password." in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_failed_logins_are_throttled_per_user(hub: RunningHub) -> None:
    user = await hub.add_user()
    for _ in range(hub.app.login_max_failures):
        response = await login_form(hub.client(), hub, user.name, "wrong-password")
        assert response.status_code == 403
    # now even the right password is refused, with a Retry-After
    response = await login_form(hub.client(), hub, user.name, "a-good-password")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many failed logins" in response.text
    # the throttle is per user: someone else still logs in
    other = await hub.add_user()
    assert (await login_form(hub.client(), hub, other.name, "a-good-password")).status_code == 303
    async with hub.app.db.begin() as conn:
        await conn.execute(text("DELETE FROM login_failures"))


async def test_failed_logins_are_throttled_per_address(hub: RunningHub) -> None:
    saved = hub.app.login_max_failures_per_address
    hub.app.login_max_failures_per_address = 3
    try:
        victims = [await hub.add_user() for _ in range(3)]
        for victim in victims:  # one failure each: no user reaches its own limit
            assert (await login_form(hub.client(), hub, victim.name, "nope")).status_code == 403
        response = await login_form(hub.client(), hub, victims[0].name, "a-good-password")
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
    finally:
        hub.app.login_max_failures_per_address = saved
        async with hub.app.db.begin() as conn:
            await conn.execute(text("DELETE FROM login_failures"))


async def test_a_successful_login_is_not_counted_as_a_failure(hub: RunningHub) -> None:
    user = await hub.add_user()
    for _ in range(hub.app.login_max_failures + 2):
        assert (
            await login_form(hub.client(), hub, user.name, "a-good-password")
        ).status_code == 303
    async with hub.app.db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM login_failures"))).scalar_one() == 0


async def test_ten_thousand_character_user_name_is_a_clean_failure(hub: RunningHub) -> None:
    response = await login_form(hub.client(), hub, "a" * 10_000, "whatever-password")
    assert response.status_code == 403
    assert "Invalid username or password." in response.text
    assert "a" * 65 not in response.text  # not echoed back whole
    async with hub.app.db.begin() as conn:
        keys = (await conn.execute(text("SELECT key FROM login_failures"))).scalars().all()
        await conn.execute(text("DELETE FROM login_failures"))
    assert all(len(key) < 200 for key in keys)


async def test_html_in_user_name_is_escaped(hub: RunningHub) -> None:
    name = '<script>alert("x")</script>'
    response = await login_form(hub.client(), hub, name, "whatever-password")
    assert response.status_code == 403
    assert "<script>alert" not in response.text
    assert html.escape(name.lower()) in response.text or "&lt;script&gt;" in response.text
    async with hub.app.db.begin() as conn:
        await conn.execute(text("DELETE FROM login_failures"))


@pytest.mark.parametrize("target", OFF_SITE_TARGETS)
async def test_login_never_redirects_off_the_hub(hub: RunningHub, target: str) -> None:
    user = await hub.add_user()
    response = await login_form(hub.client(), hub, user.name, "a-good-password", next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/hub/home"
    # and the form posts back to the same, sanitised, target
    page = await hub.client().get("/hub/login", params={"next": target})
    assert "other.domain" not in page.text and "ftp:" not in page.text


async def test_login_follows_a_local_next(hub: RunningHub) -> None:
    user = await hub.add_user()
    response = await login_form(
        hub.client(), hub, user.name, "a-good-password", next="/hub/admin?x=1"
    )
    assert response.headers["Location"] == "/hub/admin?x=1"


async def test_pages_send_anonymous_browsers_to_login(hub: RunningHub) -> None:
    response = await hub.client().get("/hub/home")
    assert response.status_code == 302
    assert response.headers["Location"] == "/hub/login?next=%2Fhub%2Fhome"


async def test_form_post_without_xsrf_is_refused(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    response = await client.post(f"/hub/spawn/{user.name}")
    assert response.status_code == 403
    login = await hub.client().post("/hub/login", data={"username": user.name, "password": "x"})
    assert login.status_code == 403


async def test_cookie_api_call_needs_xsrf_header(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    path = f"/hub/api/users/{user.name}/tokens"
    assert (await client.post(path, json={})).status_code == 403
    response = await client.post(path, json={}, headers=hub.xsrf_headers(client))
    assert response.status_code == 201


async def test_an_xsrf_token_works_only_in_its_own_login_session(hub: RunningHub) -> None:
    """As in JupyterHub 4.1+: the token is derived from the session, so one taken from
    Alice's session, even planted with its cookie in Bob's browser, is refused there,
    and so is it in Alice's next session after she logs out."""
    alice, bob = await hub.add_user(), await hub.add_user()
    alices = await hub.login(alice.name, "a-good-password")
    alice_xsrf = hub.xsrf_token(alices)
    bobs = await hub.login(bob.name, "a-good-password")
    path = f"/hub/api/users/{bob.name}/tokens"
    bobs.cookies.set("_xsrf", alice_xsrf, domain="127.0.0.1", path="/")
    planted = await bobs.post(path, json={}, headers={"X-XSRFToken": alice_xsrf})
    assert planted.status_code == 403
    assert "not issued to this login session" in planted.json()["message"]
    form = await bobs.post("/hub/token", data={"_xsrf": alice_xsrf, "note": "x"})
    assert form.status_code == 403

    own = await hub.login(bob.name, "a-good-password")
    assert (await own.post(path, json={}, headers=hub.xsrf_headers(own))).status_code == 201

    await alices.post("/hub/logout", data={"_xsrf": alice_xsrf})
    again = await hub.login(alice.name, "a-good-password")
    assert hub.xsrf_token(again) != alice_xsrf
    again.cookies.set("_xsrf", alice_xsrf, domain="127.0.0.1", path="/")
    stale = await again.post(
        f"/hub/api/users/{alice.name}/tokens", json={}, headers={"X-XSRFToken": alice_xsrf}
    )
    assert stale.status_code == 403


async def test_the_xsrf_token_stays_the_same_within_a_session(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    token = hub.xsrf_token(client)
    assert (await client.get("/hub/token")).status_code == 200
    assert hub.xsrf_token(client) == token
    assert f'value="{token}"' in (await client.get("/hub/token")).text


async def test_token_api_call_needs_no_xsrf(hub: RunningHub) -> None:
    user = await hub.add_user()
    token = await hub.token_for(user.name)
    response = await hub.client().post(
        f"/hub/api/users/{user.name}/tokens", json={}, headers={"Authorization": f"token {token}"}
    )
    assert response.status_code == 201


async def test_a_bad_token_never_falls_back_to_the_cookie(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    response = await client.post(
        f"/hub/api/users/{user.name}/tokens",
        json={},
        headers={"Authorization": "token not-a-real-token"},
    )
    assert response.status_code == 403
    assert response.json()["status"] == 403


async def test_logout_ends_the_session_server_side(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    stolen = client.cookies[SESSION_COOKIE]
    response = await client.post("/hub/logout", data={"_xsrf": hub.xsrf_token(client)})
    assert response.status_code == 303
    replay = hub.client(cookies={SESSION_COOKIE: stolen})
    assert (await replay.get("/hub/api/user")).status_code == 403


async def test_change_password(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    other_session = await hub.login(user.name, "a-good-password")
    form = {"_xsrf": hub.xsrf_token(client), "current_password": "wrong"}
    form |= {"new_password": "new-password-2", "new_password_repeat": "new-password-2"}
    assert (await client.post("/hub/change-password", data=form)).status_code == 400
    form["current_password"] = "a-good-password"
    response = await post_form(client, "/hub/change-password", form)
    assert "has been changed" in response.text
    assert (await client.get("/hub/api/user")).status_code == 200  # this session stays
    assert (await other_session.get("/hub/api/user")).status_code == 403  # others end
    assert (await login_form(hub.client(), hub, user.name, "a-good-password")).status_code == 403
    assert (await login_form(hub.client(), hub, user.name, "new-password-2")).status_code == 303


async def test_tokens_are_stored_hashed_and_shown_once(hub: RunningHub) -> None:
    user = await hub.add_user()
    headers = {"Authorization": f"token {await hub.token_for(user.name)}"}
    client = hub.client(headers=headers)
    created = await client.post(f"/hub/api/users/{user.name}/tokens", json={"note": "ci"})
    token = created.json()["token"]
    listing = await client.get(f"/hub/api/users/{user.name}/tokens")
    assert token not in listing.text
    async with hub.app.db.connect() as conn:
        dump = (await conn.execute(text("SELECT token_hash, prefix FROM api_tokens"))).all()
    assert all(token not in value for row in dump for value in row)


async def test_expired_token_is_refused(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = hub.client(headers={"Authorization": f"token {await hub.token_for(user.name)}"})
    created = await client.post(f"/hub/api/users/{user.name}/tokens", json={"expires_in": 60})
    token = created.json()["token"]
    async with hub.app.db.begin() as conn:
        await conn.execute(
            text("UPDATE api_tokens SET expires = now() - interval '1 second' WHERE id = :id"),
            {"id": int(created.json()["id"])},
        )
    response = await hub.client().get("/hub/api/user", headers={"Authorization": f"token {token}"})
    assert response.status_code == 403


async def test_cookie_is_secure_under_https_only_behind_a_trusted_proxy(
    hub: RunningHub, database_url, tmp_path
) -> None:
    user = await hub.add_user()
    https = {"X-Forwarded-Proto": "https"}
    # the default hub does not trust X-Forwarded-Proto: a client could fake it
    untrusted = await login_form(hub.client(headers=https), hub, user.name, "a-good-password")
    assert "Secure" not in untrusted.headers["Set-Cookie"].split(SESSION_COOKIE, 1)[1]
    config = Config()
    config.GilHub.trust_xheaders = True
    async with running_hub(database_url, tmp_path, config) as behind_proxy:
        client = behind_proxy.client(headers=https)
        response = await login_form(client, behind_proxy, user.name, "a-good-password")
    session_cookie = next(
        value
        for value in response.headers.get_list("Set-Cookie")
        if value.startswith(SESSION_COOKIE)
    )
    assert "Secure" in session_cookie


async def test_housekeeping_drops_expired_sessions_and_old_failures(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = await hub.login(user.name, "a-good-password")
    expire = "UPDATE login_sessions SET expires = now() - interval '1 s' WHERE user_id = :id"
    old_failure = "INSERT INTO login_failures VALUES ('addr:old', now() - interval '1 day')"
    async with hub.app.db.begin() as conn:
        await conn.execute(text(expire), {"id": user.id})
        await conn.execute(text(old_failure))
        await purge_expired_sessions(conn)
        await hub.app.login_throttle.purge(conn)
        sessions = text("SELECT count(*) FROM login_sessions WHERE user_id = :id")
        assert (await conn.execute(sessions, {"id": user.id})).scalar_one() == 0
        failures = text("SELECT count(*) FROM login_failures WHERE key = 'addr:old'")
        assert (await conn.execute(failures)).scalar_one() == 0
    hub.app.auth_cache.forget_user(user.id)
    assert (await client.get("/hub/api/user")).status_code == 403
