"""The repository's REST API and pages against a real running hub."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from gilhub.contents import query as contents
from gilhub.repository.notebooks import parse_notebook, read_origin, serialize_notebook
from tests.hub.conftest import RunningHub, post_form
from tests.repository.helpers import notebook_bytes

MAX_SIZE = 300_000


class Person:
    """A hub user with a token client and a cookie (browser-like) client."""

    def __init__(self, hub: RunningHub, user, api: httpx.AsyncClient, web: httpx.AsyncClient):
        self.hub, self.user, self.api, self.web = hub, user, api, web

    async def save(self, path: str, content: bytes) -> None:
        async with self.hub.app.db.begin() as conn:
            await contents.write_file(conn, self.user.db_role, path, content)

    async def load(self, path: str) -> bytes:
        async with self.hub.app.db.connect() as conn:
            return (await contents.read_file(conn, self.user.db_role, path)).content

    async def edit(self, path: str, *sources: str) -> None:
        """Change the cells' sources of my copy, keeping its metadata (and origin)."""
        notebook = parse_notebook(await self.load(path))
        for cell, source in zip(notebook.cells, sources, strict=True):
            cell.source = source
        await self.save(path, serialize_notebook(notebook))

    async def push(self, source: str, **body) -> httpx.Response:
        return await self.api.post("/hub/api/repo/push", json={"source": source, **body})

    async def pull(self, path: str, **body) -> httpx.Response:
        return await self.api.post("/hub/api/repo/pull", json={"path": path, **body})


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> dict[str, Person]:
    hub.app.repository.config.max_size = MAX_SIZE
    found = {}
    for name, admin in (("alice", False), ("bob", False), ("root", True)):
        user = await hub.add_user(name, admin=admin)
        token = await hub.token_for(name)
        api = hub.client(headers={"Authorization": f"token {token}"})
        web = await hub.login(name, "a-good-password")
        found[name] = Person(hub, user, api, web)
    return found


async def test_push_pull_history_diff_search_over_http(people):
    alice, bob = people["alice"], people["bob"]
    await alice.save("probe.ipynb", notebook_bytes("temperature = fit(sweep)"))
    response = await alice.push("probe.ipynb", path="plasma/probe.ipynb", message="first fit")
    assert response.status_code == 201, response.text
    assert response.json()["version"]["number"] == 1
    again = await alice.push("probe.ipynb", path="plasma/probe.ipynb")
    assert again.status_code == 200 and again.json()["created"] is False

    found = await bob.api.get("/hub/api/repo/search", params={"q": "sweep"})
    assert [r["path"] for r in found.json()["results"]] == ["plasma/probe.ipynb"]
    pulled = await bob.pull("plasma/probe.ipynb", dest="mine/probe.ipynb")
    assert pulled.status_code == 201, pulled.text
    copy = parse_notebook(await bob.load("mine/probe.ipynb"))
    assert read_origin(copy) == ("plasma/probe.ipynb", 1)
    copy.cells[0].source = "temperature = fit(sweep, robust=True)"
    await bob.save("mine/probe.ipynb", serialize_notebook(copy))
    pushed = await bob.push("mine/probe.ipynb", path="plasma/probe.ipynb", message="robust")
    assert pushed.status_code == 201 and pushed.json()["version"]["number"] == 2

    history = (await bob.api.get("/hub/api/repo/history/plasma/probe.ipynb")).json()
    assert [(v["number"], v["author"]) for v in history["versions"]] == [(2, "bob"), (1, "alice")]
    diff = (await bob.api.get("/hub/api/repo/diff/plasma/probe.ipynb")).json()
    assert [c["status"] for c in diff["cells"]] == ["modified"]
    assert ["+", "temperature = fit(sweep, robust=True)"] in diff["cells"][0]["source"]

    stale = await alice.push("probe.ipynb", path="plasma/probe.ipynb", base=1)
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert "bob" in body["message"] and body["head"] == 2
    assert [v["author"] for v in body["since"]] == ["bob"]

    missing = await bob.pull("plasma/probe.ipynb", version=99)
    assert missing.status_code == 404 and "no version 99" in missing.json()["message"]


async def test_two_truly_concurrent_http_pushes(people):
    alice, bob = people["alice"], people["bob"]
    await alice.save("race.ipynb", notebook_bytes("0"))
    assert (await alice.push("race.ipynb")).status_code == 201
    await alice.save("race.ipynb", notebook_bytes("alice"))
    await bob.save("race.ipynb", notebook_bytes("bob"))
    responses = await asyncio.gather(
        alice.push("race.ipynb", base=1), bob.push("race.ipynb", base=1)
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    history = (await alice.api.get("/hub/api/repo/history/race.ipynb")).json()["versions"]
    assert [v["number"] for v in history] == [2, 1]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"source": "../../etc/passwd"}, 400),
        ({"source": "/abs.ipynb"}, 400),
        ({"source": "a\x00b.ipynb"}, 400),
        ({"source": "ok.ipynb", "path": "../escape.ipynb"}, 400),
        ({"source": "nowhere.ipynb"}, 404),
        ({"source": "notes.txt", "path": "notes.ipynb"}, 400),
        ({"source": "broken.ipynb"}, 400),
        ({"source": "huge.ipynb"}, 413),
        ({"source": "ok.ipynb", "base": "three"}, 400),
    ],
)
async def test_bad_pushes_get_clear_errors(people, body, status):
    alice = people["alice"]
    await alice.save("ok.ipynb", notebook_bytes("fine"))
    await alice.save("notes.txt", b"just text")
    await alice.save("broken.ipynb", b'{"cells": [}')
    await alice.save("huge.ipynb", b" " * (MAX_SIZE + 1))
    response = await alice.api.post("/hub/api/repo/push", json=body)
    assert response.status_code == status, response.text
    assert response.json()["message"]


async def test_cookie_api_calls_need_xsrf(people, hub):
    alice = people["alice"]
    await alice.save("x.ipynb", notebook_bytes("x"))
    refused = await alice.web.post("/hub/api/repo/push", json={"source": "x.ipynb"})
    assert refused.status_code == 403
    accepted = await alice.web.post(
        "/hub/api/repo/push", json={"source": "x.ipynb"}, headers=hub.xsrf_headers(alice.web)
    )
    assert accepted.status_code in (200, 201), accepted.text
    anonymous = await hub.client().get("/hub/api/repo/search", params={"q": "x"})
    assert anonymous.status_code == 403


async def test_markup_in_names_messages_and_tags_is_escaped(people):
    alice = people["alice"]
    evil = "<script>alert(1)</script>"
    await alice.save(f"{evil}.ipynb", notebook_bytes("1"))
    response = await alice.push(f"{evil}.ipynb", message=f"msg {evil}")
    assert response.status_code == 201, response.text
    bad_tag = await alice.api.patch(f"/hub/api/repo/entries/{evil}.ipynb", json={"tags": [evil]})
    assert bad_tag.status_code == 400
    for page in ["/hub/repo/tree/", "/hub/repo/activity", f"/hub/repo/entry/{evil}.ipynb"]:
        html = (await alice.web.get(page)).text
        assert evil not in html, page
        assert "&lt;script&gt;" in html, page


async def test_view_sanitises_outputs_that_carry_scripts(people):
    alice = people["alice"]
    payload = "<script>window.stolen=1</script><img src=x onerror=alert(1)><b>bold</b>"
    await alice.save("evil-out.ipynb", notebook_bytes("show()", output=payload))
    pushed = await alice.push("evil-out.ipynb", keep_outputs=True)
    assert pushed.status_code == 201
    page = await alice.web.get("/hub/repo/view/evil-out.ipynb")
    assert page.status_code == 200 and 'sandbox="allow-scripts allow-top-navigation' in page.text
    rendered = await alice.web.get("/hub/repo/rendered/evil-out.ipynb")
    assert rendered.status_code == 200
    assert "window.stolen" not in rendered.text and "onerror" not in rendered.text
    assert "<b>bold</b>" in rendered.text
    assert "script-src 'self'" in rendered.headers["Content-Security-Policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", rendered.text), "loads from outside"
    mathjax = re.search(r'src="(/hub/repo/mathjax/MathJax.js[^"]*)"', rendered.text)
    assert mathjax, "MathJax comes from the hub"
    script = await alice.web.get(mathjax.group(1).replace("&amp;", "&"))
    assert script.status_code == 200 and "MathJax" in script.text


async def test_pages_push_conflict_merge_and_pull(people, hub):
    alice, bob = people["alice"], people["bob"]
    await alice.save("m.ipynb", notebook_bytes("a = 1", "b = 1"))
    assert (await alice.push("m.ipynb")).status_code == 201
    assert (await bob.pull("m.ipynb")).status_code == 201
    await bob.edit("m.ipynb", "a = 2", "b = 1")
    assert (await bob.push("m.ipynb")).status_code == 201
    await alice.edit("m.ipynb", "a = 1", "b = 3")
    xsrf = {"_xsrf": hub.xsrf_token(alice.web)}
    mine = "b is 3 <now>"
    page = await alice.web.post(
        "/hub/repo/push", data={"source": "m.ipynb", "message": mine, **xsrf}
    )
    assert page.status_code == 303 and "/hub/repo/conflict" in page.headers["Location"]
    conflict = await alice.web.get(page.headers["Location"])
    assert conflict.status_code == 200, conflict.text
    assert (
        "merge cleanly" in conflict.text and "a = 2" in conflict.text and "b = 3" in conflict.text
    )
    # both forms keep her message; "push as a new path" proposes a path nobody has
    assert conflict.text.count('name="message" value="b is 3 &lt;now&gt;"') == 2
    await alice.save("m-2.ipynb", notebook_bytes("taken"))
    assert (await alice.push("m-2.ipynb")).status_code == 201
    proposed = (await alice.web.get(page.headers["Location"])).text
    assert 'name="path" value="m-3.ipynb"' in proposed
    merged = await alice.web.post(
        "/hub/repo/merge",
        data={"source": "m.ipynb", "path": "m.ipynb", "base": "1", "message": mine, **xsrf},
    )
    assert merged.status_code == 303
    history = (await alice.api.get("/hub/api/repo/history/m.ipynb")).json()
    assert mine in [version["message"] for version in history["versions"]]
    sources = [c.source for c in parse_notebook(await alice.load("m.ipynb")).cells]
    assert sources == ["a = 2", "b = 3"]

    pull_form = {"path": "m.ipynb", "dest": "m.ipynb", **{"_xsrf": hub.xsrf_token(bob.web)}}
    refused = await post_form(bob.web, "/hub/repo/pull", pull_form)
    assert "Write beside it" in refused.text
    beside = await post_form(bob.web, "/hub/repo/pull", {**pull_form, "on_exists": "beside"})
    assert beside.status_code == 200 and "m (2).ipynb" in beside.text
    shown_once = await bob.web.get(str(beside.url))  # reloaded: nothing is pulled again
    assert "m (2).ipynb" not in shown_once.text


async def test_rename_delete_restore_over_http(people):
    alice, bob, root = people["alice"], people["bob"], people["root"]
    await alice.save("own.ipynb", notebook_bytes("mine"))
    assert (await alice.push("own.ipynb", path="lab/own.ipynb")).status_code == 201
    forbidden = await bob.api.delete("/hub/api/repo/entries/lab/own.ipynb")
    assert forbidden.status_code == 403
    renamed = await alice.api.patch(
        "/hub/api/repo/entries/lab/own.ipynb", json={"path": "lab/renamed.ipynb", "tags": ["iv"]}
    )
    assert renamed.status_code == 200 and renamed.json()["tags"] == ["iv"]
    deleted = await alice.api.delete("/hub/api/repo/entries/lab/renamed.ipynb")
    assert deleted.status_code == 200
    assert (await alice.api.get("/hub/api/repo/entries/lab/renamed.ipynb")).status_code == 404
    assert (await alice.api.get("/hub/api/repo/deleted")).status_code == 403
    listed = (await root.api.get("/hub/api/repo/deleted")).json()["entries"]
    entry_id = next(e["id"] for e in listed if e["path"] == "lab/renamed.ipynb")
    restored = await root.api.post("/hub/api/repo/deleted", json={"id": entry_id})
    assert restored.status_code == 200
    history = (await alice.api.get("/hub/api/repo/history/lab/renamed.ipynb")).json()
    assert len(history["versions"]) == 1


async def test_pages_render(people):
    alice = people["alice"]
    for page in [
        "/hub/repo/tree/",
        "/hub/repo/tree/plasma",
        "/hub/repo/search?q=sweep",
        "/hub/repo/entry/plasma/probe.ipynb",
        "/hub/repo/view/plasma/probe.ipynb",
        "/hub/repo/diff/plasma/probe.ipynb?from=1&to=2&outputs=1",
        "/hub/repo/push",
        "/hub/repo/activity",
    ]:
        response = await alice.web.get(page)
        assert response.status_code == 200, (page, response.text[:500])
    assert (await alice.web.get("/hub/repo/deleted")).status_code == 403
    assert (await alice.web.get("/hub/repo/entry/none.ipynb")).status_code == 404


async def test_search_results_show_where_the_words_were_found(people):
    alice, bob = people["alice"], people["bob"]
    source = "# the <b>resonance</b> of the langmuir probe\nresonance = 3 < bias & bias < 7"
    await alice.save("langmuir.ipynb", notebook_bytes(source))
    pushed = await alice.push("langmuir.ipynb", path="plasma/langmuir.ipynb", message="resonance")
    assert pushed.status_code == 201, pushed.text

    page = await bob.web.get("/hub/repo/search", params={"q": "langmuir resonance"})
    found = await bob.api.get("/hub/api/repo/search", params={"q": "langmuir resonance"})

    assert page.status_code == 200
    snippet = page.text[page.text.index('class="snippet"') :]
    assert "<mark>resonance</mark>" in snippet and "<mark>langmuir</mark>" in snippet
    assert "3 &lt; bias &amp; bias" in snippet and "<b>" not in snippet  # text, never markup
    (hit,) = [r for r in found.json()["results"] if r["path"] == "plasma/langmuir.ipynb"]
    assert "resonance" in hit["snippet"] and "\x02" not in hit["snippet"]
