"""Cross-cutting security and bad-input checks of issue 3, against a real running hub.

The items that other hub tests already cover exactly are not repeated here: wrong password,
long user names, ``next=`` and XSRF (test_auth), WebSocket upgrade without login, Alice on
Bob's server and a direct request to a server's port without its token (test_proxy,
test_spawner), a failing server command's error page (test_pages). This module adds
PostgreSQL unreachable on the command line, markup in paths, queries and file names
wherever the hub shows them, and cross-site use of a valid hub cookie.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from gilhub.servers import ServerState
from tests.hub.conftest import RunningHub
from tests.hub.test_pages import logged_in_user

GILHUB = [sys.executable, "-c", "from gilhub.app import main; main()"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_database_at_start_is_a_clear_error(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql://gilhub:not-a-secret@127.0.0.1:{port}/gilhub"
    done = subprocess.run(
        [*GILHUB, f"--db-url={url}", f"--data-dir={tmp_path}", "--port=0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("gilhub: cannot use the database")
    assert f"127.0.0.1:{port}" in message
    assert "not-a-secret" not in output  # the password is never echoed


# Markup that must never come back unescaped, in a path segment or a query value (no "/",
# so that it also works as one file name).
MARKUP = '"><svg onload=alert(1)><img src=x onerror=alert(2)>'


def reflects_markup(response: httpx.Response) -> bool:
    """Whether the raw markup appears in the page (escaped is fine)."""
    return any(piece in response.text for piece in ("<svg onload", "<img src=x"))


async def test_markup_in_paths_and_queries_is_never_reflected(hub: RunningHub) -> None:
    """Every hub page that shows a path, a file name or ``next=`` escapes what it shows."""
    name, client = await logged_in_user(hub)
    quoted = quote(MARKUP, safe="")
    urls = [
        f"/hub/login?next=/user/{name}/lab/tree/{quoted}",
        f"/hub/spawn/{name}?next=/user/{name}/lab/tree/{quoted}.ipynb",
        f"/hub/spawn-pending/{name}?next=/user/{name}/files/{quoted}",
        f"/hub/user-redirect/lab/tree/{quoted}.ipynb",
        f"/hub/home?{quoted}={quoted}",
        f"/hub/spawn/{quoted}",
        f"/hub/api/users/{quoted}",
        f"/user/{name}/lab/tree/{quoted}.ipynb",  # stopped server: offered a start
        f"/user/{quoted}/tree",
    ]
    anonymous = hub.client()
    for url in urls:
        for who in (client, anonymous):
            response = await who.get(url, headers={"Accept": "text/html"})
            assert not reflects_markup(response), (url, response.status_code, response.text)


async def running_server(hub: RunningHub) -> tuple[str, httpx.AsyncClient, httpx.AsyncClient]:
    """A user with a running server: (name, cookie-logged-in client, token client)."""
    name, browser = await logged_in_user(hub)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    assert (await api.post(f"/hub/api/users/{name}/server")).status_code in (201, 202)
    async with asyncio.timeout(120):
        while hub.app.servers.status(name).state != ServerState.RUNNING:
            await asyncio.sleep(0.1)
    return name, browser, api


async def test_file_names_with_markup_are_escaped_in_the_hubs_pages(hub: RunningHub) -> None:
    """A file named with HTML, saved through the proxy, then reached via the hub's pages."""
    name, client, api = await running_server(hub)
    try:
        path = quote(f"{MARKUP}.txt", safe="")
        saved = await api.put(
            f"/user/{name}/api/contents/{path}",
            json={"type": "file", "format": "text", "content": "x"},
        )
        assert saved.status_code == 201, saved.text
        assert saved.json()["name"] == f"{MARKUP}.txt"
        for url in (f"/user/{name}/api/contents", f"/user/{name}/api/contents/{path}"):
            listed = await api.get(url)
            assert listed.headers["Content-Type"].startswith("application/json")
        for url in (
            f"/hub/user-redirect/files/{path}",
            f"/user/{name}/lab/tree/{path}",
            "/hub/home",
        ):
            page = await client.get(url, headers={"Accept": "text/html"})
            assert not reflects_markup(page), (url, page.status_code, page.text)
    finally:
        await api.delete(f"/hub/api/users/{name}/server")


async def test_cross_site_requests_with_a_valid_cookie_are_refused(hub: RunningHub) -> None:
    """Another site (say another port of the lab's host, which counts as same-site for the
    cookie) cannot use the browser's hub cookie to drive a user's server: the hub adds the
    server's token, so jupyter_server's own origin and XSRF checks do not apply."""
    name, browser, api = await running_server(hub)
    try:
        kernel = (await api.post(f"/user/{name}/api/kernels", json={})).json()["id"]
        url = f"{hub.url.replace('http', 'ws', 1)}/user/{name}/api/kernels/{kernel}/channels"
        cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
        evil = "http://127.0.0.1:1"
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=cookie, origin=evil):
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(url, additional_headers=cookie, origin=hub.url) as ours:
            await ours.ping()

        forged = await browser.post(f"/user/{name}/api/kernels", json={}, headers={"Origin": evil})
        assert forged.status_code == 403
        kernels = (await api.get(f"/user/{name}/api/kernels")).json()
        assert [k["id"] for k in kernels] == [kernel]
    finally:
        await api.delete(f"/hub/api/users/{name}/server")
