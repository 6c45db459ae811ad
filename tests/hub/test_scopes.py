"""Token scopes: each scope allows exactly its requests, over the real API and proxy.

Alice's server runs for the whole module, Bob's never does, so that every
request is harmless to repeat: starting Alice's server answers 400 ("already
running") once the scope check has let it through, stopping Bob's answers 204,
and anything the token's scopes do not reach answers 403.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from gilhub.auth.scopes import ROLES, expand
from gilhub.servers import ServerState
from tests.hub.conftest import USER_PASSWORD, RunningHub, post_form
from tests.hub.servers_harness import start_and_wait, wait_for_state


@dataclass(frozen=True)
class People:
    alice: str
    bob: str


@dataclass(frozen=True)
class Action:
    method: str
    path: str
    json: dict | None = None


#: Every request of the table, by a short name; ALICE and BOB stand for their names.
ACTIONS = {
    "list users": Action("GET", "/hub/api/users"),
    "get alice": Action("GET", "/hub/api/users/ALICE"),
    "get bob": Action("GET", "/hub/api/users/BOB"),
    "start alice's server": Action("POST", "/hub/api/users/ALICE/server"),
    "stop bob's server": Action("DELETE", "/hub/api/users/BOB/server"),
    "use alice's server": Action("GET", "/user/ALICE/api/status"),
    "create a token for alice": Action("POST", "/hub/api/users/ALICE/tokens", {"scopes": []}),
    "post alice's activity": Action("POST", "/hub/api/users/ALICE/activity", {}),
    "read hub info": Action("GET", "/hub/api/info"),
}

ADMIN = "admin"
ALICE = "alice"

#: (owner of the token, its scopes) -> the actions it may take; all others are refused.
TABLE: list[tuple[str, list[str], set[str]]] = [
    (ADMIN, ["inherit"], set(ACTIONS) - {"use alice's server"}),  # no admin_access
    (ADMIN, [], set()),
    (ADMIN, ["read:users"], {"get alice", "get bob"}),
    (ADMIN, ["read:users!user=ALICE"], {"get alice"}),
    (ADMIN, ["users"], {"list users", "get alice", "get bob", "post alice's activity"}),
    (ADMIN, ["users!user=ALICE"], {"list users", "get alice", "post alice's activity"}),
    (ADMIN, ["admin:users"], {"list users", "get alice", "get bob", "post alice's activity"}),
    (ADMIN, ["admin:users!user=BOB"], {"list users", "get bob"}),
    (ADMIN, ["servers"], {"start alice's server", "stop bob's server"}),
    (ADMIN, ["servers!user=ALICE"], {"start alice's server"}),
    (ADMIN, ["servers!user=BOB"], {"stop bob's server"}),
    (ADMIN, ["tokens"], {"create a token for alice"}),
    (ADMIN, ["tokens!user=BOB"], set()),
    (ADMIN, ["users:activity"], {"post alice's activity"}),
    (ADMIN, ["users:activity!user=BOB"], set()),
    (ADMIN, ["read:hub"], {"read hub info"}),
    (ALICE, ["inherit"], ACTIONS.keys() - {"get bob", "stop bob's server", "read hub info"}),
    (ALICE, ["read:users!user"], {"get alice"}),
    (ALICE, ["users:activity!user"], {"post alice's activity"}),
    (ALICE, ["access:servers!user"], {"use alice's server"}),
    (ALICE, ["access:servers!user=ALICE"], {"use alice's server"}),
    (ALICE, ["servers!user"], {"start alice's server"}),
    (ALICE, ["tokens!user"], {"create a token for alice"}),
    (ALICE, ["list:users!user"], {"list users"}),
]

#: Scopes an owner does not hold: refused when the token is created.
NOT_HELD = [
    (ALICE, ["admin:users"]),
    (ALICE, ["read:users"]),
    (ALICE, ["read:hub"]),
    (ALICE, ["servers!user=BOB"]),
    (ALICE, ["access:servers!user=BOB"]),
    (ADMIN, ["access:servers"]),  # admins use others' servers only with admin_access
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def named(text: str, people: People) -> str:
    return text.replace("ALICE", people.alice).replace("BOB", people.bob)


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> People:
    alice = await hub.add_user(hub.unique_name("alice"))
    bob = await hub.add_user(hub.unique_name("bob"))
    await start_and_wait(hub.app, alice)
    return People(alice.name, bob.name)


async def token_with(hub: RunningHub, people: People, owner: str, scopes: list[str]):
    """``POST /hub/api/users/OWNER/tokens`` by the owner itself, with an inherit token."""
    name = hub.admin_name if owner == ADMIN else people.alice
    client = hub.client(headers=auth(await hub.token_for(name)))
    scopes = [named(scope, people) for scope in scopes]
    return name, client, await client.post(f"/hub/api/users/{name}/tokens", json={"scopes": scopes})


async def outcome(client: httpx.AsyncClient, action: Action, people: People) -> bool:
    """Whether the request got past the scope check (False: refused with 403)."""
    response = await client.request(action.method, named(action.path, people), json=action.json)
    assert response.status_code in (200, 201, 204, 400, 403), (action, response.text)
    if action.path.endswith("/server") and action.method == "POST":
        return response.status_code == 400  # already running: the scope let it through
    return response.status_code != 403


@pytest.mark.parametrize(
    ("owner", "scopes", "allowed"), TABLE, ids=[f"{o}:{' '.join(s) or '-'}" for o, s, _ in TABLE]
)
async def test_each_scope_allows_exactly_its_requests(
    hub: RunningHub, people: People, owner: str, scopes: list[str], allowed: set[str]
) -> None:
    name, owner_client, created = await token_with(hub, people, owner, scopes)
    assert created.status_code == 201, created.text
    model = created.json()
    shown = await owner_client.get(f"/hub/api/users/{name}/tokens/{model['id']}")
    assert shown.json()["scopes"] == [named(scope, people) for scope in scopes]
    client = hub.client(headers=auth(model["token"]))
    outcomes = {what: await outcome(client, action, people) for what, action in ACTIONS.items()}
    assert {what for what, passed in outcomes.items() if passed} == set(allowed)


async def test_a_filtered_listing_shows_only_the_filtered_users(
    hub: RunningHub, people: People
) -> None:
    _, _, created = await token_with(hub, people, ADMIN, ["list:users!user=ALICE"])
    listed = await hub.client(headers=auth(created.json()["token"])).get("/hub/api/users")
    assert [user["name"] for user in listed.json()] == [people.alice]


@pytest.mark.parametrize(("owner", "scopes"), NOT_HELD)
async def test_a_token_never_holds_more_than_its_owner(
    hub: RunningHub, people: People, owner: str, scopes: list[str]
) -> None:
    _, _, created = await token_with(hub, people, owner, scopes)
    assert created.status_code == 400
    assert "not held by user" in created.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": ["read:users", "no:such:scope"]},
        {"scopes": ["all"]},
        {"scopes": ["read:users!group=lab"]},
        {"scopes": ["read:users!user="]},
        {"roles": ["nosuchrole"]},
        {"roles": ["token"], "scopes": ["inherit"]},
        {"scopes": "read:users"},
        {"scopes": [1]},
        {"roles": ["x"] * 101},
    ],
)
async def test_unknown_or_malformed_scopes_and_roles_are_400(
    hub: RunningHub, people: People, body: dict
) -> None:
    """As JupyterHub answers: 400 with what is wrong, and no token made."""
    client = hub.client(headers=auth(await hub.token_for(people.alice)))
    before = (await client.get(f"/hub/api/users/{people.alice}/tokens")).json()["api_tokens"]
    response = await client.post(f"/hub/api/users/{people.alice}/tokens", json=body)
    assert response.status_code == 400, response.text
    after = (await client.get(f"/hub/api/users/{people.alice}/tokens")).json()["api_tokens"]
    assert after == before


async def test_roles_become_their_scopes(hub: RunningHub, people: People) -> None:
    client = hub.client(headers=auth(await hub.token_for(people.alice)))
    created = await client.post(f"/hub/api/users/{people.alice}/tokens", json={"roles": ["server"]})
    assert created.status_code == 201
    assert created.json()["scopes"] == list(ROLES["server"])
    refused = await client.post(f"/hub/api/users/{people.alice}/tokens", json={"roles": ["admin"]})
    assert refused.status_code == 400
    token = hub.client(headers=auth(created.json()["token"]))
    assert (await token.get(f"/user/{people.alice}/api/status")).status_code == 200
    assert (await token.get(f"/hub/api/users/{people.alice}")).status_code == 403


async def test_server_models_need_read_servers(hub: RunningHub, people: People) -> None:
    _, _, reader = await token_with(hub, people, ALICE, ["read:users!user"])
    model = await hub.client(headers=auth(reader.json()["token"])).get("/hub/api/user")
    assert model.json()["server"] == f"/user/{people.alice}/" and "servers" not in model.json()
    _, _, both = await token_with(hub, people, ALICE, ["read:users!user", "read:servers!user"])
    model = await hub.client(headers=auth(both.json()["token"])).get("/hub/api/user")
    assert model.json()["servers"][""]["ready"] is True


async def test_restoring_deleted_repository_entries_needs_admin_repo(
    hub: RunningHub, people: People
) -> None:
    _, _, repo = await token_with(hub, people, ADMIN, ["repo"])
    assert (
        await hub.client(headers=auth(repo.json()["token"])).get("/hub/api/repo/deleted")
    ).status_code == 403
    _, _, admin = await token_with(hub, people, ADMIN, ["admin:repo"])
    assert (
        await hub.client(headers=auth(admin.json()["token"])).get("/hub/api/repo/deleted")
    ).status_code == 200


async def test_a_user_cannot_make_tokens_for_someone_else(hub: RunningHub, people: People) -> None:
    client = hub.client(headers=auth(await hub.token_for(people.alice)))
    response = await client.post(f"/hub/api/users/{people.bob}/tokens", json={})
    assert response.status_code == 403
    assert "requires any of [tokens]" in response.json()["message"]


async def test_a_scoped_token_cannot_use_pages_or_other_parts(
    hub: RunningHub, people: People
) -> None:
    """Pages need a token with all its owner's rights; the repository its own scopes."""
    _, _, created = await token_with(hub, people, ALICE, ["read:users!user"])
    token = hub.client(headers=auth(created.json()["token"]))
    assert (await token.post("/hub/token", data={"note": "x"})).status_code == 403
    assert (await token.get("/hub/api/repo/entries")).status_code == 403
    assert (await token.get("/hub/api/bib")).status_code == 403
    _, _, reader = await token_with(hub, people, ALICE, ["read:repo"])
    reading = hub.client(headers=auth(reader.json()["token"]))
    assert (await reading.get("/hub/api/repo/entries")).status_code == 200
    assert (await reading.post("/hub/api/repo/push", json={})).status_code == 403


async def test_the_current_user_model_lists_the_tokens_expanded_scopes(
    hub: RunningHub, people: People
) -> None:
    _, _, created = await token_with(hub, people, ALICE, ["users:activity!user"])
    me = await hub.client(headers=auth(created.json()["token"])).get("/hub/api/user")
    assert me.json()["scopes"] == sorted(
        f"{scope}!user={people.alice}" for scope in expand(["users:activity"], people.alice)
    )


async def test_a_token_loses_what_its_owner_loses(hub: RunningHub, people: People) -> None:
    admin_api = hub.client(headers=auth(await hub.token_for(hub.admin_name)))
    carol = hub.unique_name("carol")
    await admin_api.post(f"/hub/api/users/{carol}", json={"admin": True})
    carol_api = hub.client(headers=auth(await hub.token_for(carol)))
    created = await carol_api.post(
        f"/hub/api/users/{carol}/tokens", json={"scopes": ["read:users"]}
    )
    token = hub.client(headers=auth(created.json()["token"]))
    assert (await token.get(f"/hub/api/users/{people.bob}")).status_code == 200
    await admin_api.patch(f"/hub/api/users/{carol}", json={"admin": False})
    assert (await token.get(f"/hub/api/users/{people.bob}")).status_code == 403
    assert (await token.get(f"/hub/api/users/{carol}")).status_code == 200


async def test_the_token_page_creates_scoped_tokens(hub: RunningHub, people: People) -> None:
    browser = await hub.login(people.alice, USER_PASSWORD)
    xsrf = hub.xsrf_token(browser)
    made = await post_form(
        browser, "/hub/token", {"_xsrf": xsrf, "note": "reader", "scopes": "read:users!user"}
    )
    assert made.status_code == 200 and "read:users!user" in made.text
    refused = await post_form(browser, "/hub/token", {"_xsrf": xsrf, "scopes": "admin:users"})
    assert "not held by user" in refused.text


async def test_the_reviews_example_a_read_only_token_cannot_start_or_stop(hub: RunningHub) -> None:
    """Finding 6 replayed: ``read:users!user=NAME`` reads, only ``servers`` starts and stops."""
    carol = await hub.add_user(hub.unique_name("carol"))
    owner = hub.client(headers=auth(await hub.token_for(carol.name)))
    tokens = f"/hub/api/users/{carol.name}/tokens"
    server = f"/hub/api/users/{carol.name}/server"
    reader = await owner.post(tokens, json={"scopes": [f"read:users!user={carol.name}"]})
    assert reader.json()["scopes"] == [f"read:users!user={carol.name}"]
    reading = hub.client(headers=auth(reader.json()["token"]))
    assert (await reading.get(f"/hub/api/users/{carol.name}")).status_code == 200
    assert (await reading.post(server)).status_code == 403
    starter = await owner.post(tokens, json={"scopes": ["servers!user"]})
    starting = hub.client(headers=auth(starter.json()["token"]))
    assert (await starting.post(server)).status_code in (201, 202)
    await wait_for_state(hub.app, carol.name, ServerState.RUNNING)
    assert (await reading.delete(server)).status_code == 403
    assert (await starting.delete(server)).status_code in (202, 204)
    await wait_for_state(hub.app, carol.name, ServerState.STOPPED)
