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
import contextlib
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import pytest
import websockets
from sqlalchemy.engine import URL
from traitlets.config import Config
from websockets.exceptions import InvalidStatus

from gilhub.servers import ServerState
from tests.hub.conftest import RunningHub
from tests.hub.servers_harness import add_person, execute
from tests.hub.servers_harness import start_hub as start_test_hub
from tests.hub.servers_harness import stop_hub as stop_test_hub
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


# -- a real hub process: its memory and its log --------------------------------------

MiB = 1024 * 1024
SECRET = "s3cr3t-token-value-never-logged"


@dataclass
class HubProcess:
    process: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def rss_mib(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / MiB


@pytest.fixture(scope="module")
async def hub_process(database_url: URL, tmp_path_factory) -> AsyncIterator[HubProcess]:
    """``gilhub`` as people run it, on the module's database, its log in a file."""
    data_dir = tmp_path_factory.mktemp("hub-process")
    url = database_url.render_as_string(hide_password=False)
    (data_dir / "gilhub_config.py").write_text(f"c.GilHub.db_url = {url!r}\n")
    log = data_dir / "hub.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *GILHUB, f"--data-dir={data_dir}", "--port=0", stdout=out, stderr=out
        )
    try:
        async with asyncio.timeout(120):
            while (match := re.search(r"listening on (http://\S+?)/\s", log.read_text())) is None:
                assert process.returncode is None, log.read_text()
                await asyncio.sleep(0.1)
        yield HubProcess(process, match.group(1), log)
    finally:
        process.terminate()
        await process.wait()


async def post_huge_body(url: str, path: str, size: int = 100 * MiB) -> int | None:
    """POST ``size`` bytes with a Content-Length, reading the answer while sending: the
    status answered, or None if the connection was closed before one could be read."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n"
    writer.write((head + "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode())

    async def send() -> None:
        block = b"a" * MiB
        with contextlib.suppress(ConnectionError):
            for _ in range(size // MiB):
                writer.write(block)
                await writer.drain()

    async def status() -> int | None:
        with contextlib.suppress(ConnectionError):
            status_line = await reader.readline()
            return int(status_line.split()[1]) if status_line else None
        return None

    sending = asyncio.create_task(send())
    try:
        return await status()
    finally:
        sending.cancel()
        writer.close()


async def test_unauthenticated_huge_bodies_are_refused_unread(hub_process: HubProcess) -> None:
    """Ten anonymous 100 MiB POSTs at once (login form and API) barely move the hub's memory."""
    async with httpx.AsyncClient(base_url=hub_process.url) as client:
        assert (await client.get("/hub/login")).status_code == 200
    before = peak = hub_process.rss_mib
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, hub_process.rss_mib)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    paths = ["/hub/login", "/hub/api/users/admin/tokens"] * 5
    async with asyncio.timeout(120):
        statuses = await asyncio.gather(*(post_huge_body(hub_process.url, p) for p in paths))
    sampling = False
    await sampler
    print(f"hub RSS {before:.0f} MiB, peak {peak:.0f} MiB during ten 100 MiB POSTs: {statuses}")
    assert set(statuses) <= {413, None}
    assert peak - before < 50


async def test_a_refused_token_in_the_query_never_reaches_the_log(hub_process: HubProcess):
    async with httpx.AsyncClient(base_url=hub_process.url) as client:
        for path in ("/hub/api/users", "/user/admin/api/status", "/hub/api/nothing"):
            response = await client.get(path, params={"token": SECRET, "other": "kept"})
            assert response.status_code in (403, 404)
    async with asyncio.timeout(10):  # the hub writes its log as it answers
        while "/hub/api/nothing" not in hub_process.log.read_text():
            await asyncio.sleep(0.05)
    log = hub_process.log.read_text()
    assert SECRET not in log
    assert "token=[secret]&other=kept" in log


async def test_body_limits_follow_authentication(hub: RunningHub) -> None:
    """A body over 64 KiB is read only from a known sender, and up to the endpoint's bound."""
    name, _ = await logged_in_user(hub)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    url = f"/hub/api/users/{name}/tokens"
    long_note = {"note": "n" * 100_000}
    judged = await api.post(url, json=long_note)
    assert judged.status_code == 400 and "note" in judged.json()["message"]  # read, then judged
    anonymous = await hub.client().post(url, json=long_note)
    assert anonymous.status_code == 413
    assert "65,536 bytes" in anonymous.json()["message"]
    forged = hub.client(headers={"Authorization": "token not-a-real-token"})
    assert (await forged.post(url, json=long_note)).status_code == 413
    try:
        too_big = await api.post(url, json={"note": "n" * 3 * MiB})
    except httpx.TransportError:
        pass  # closed while sending: refused unread all the same
    else:
        assert too_big.status_code == 413


# -- HTTPS ---------------------------------------------------------------------------


async def test_https_hub_with_a_made_certificate(database_url: URL, tmp_path: Path) -> None:
    """``gilhub make-cert``, then a hub on it: login over HTTPS with Secure cookies and HSTS,
    and the proxy still reaches a user server, kernel WebSocket included."""
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    made = subprocess.run(
        [*GILHUB, "make-cert", f"--cert={cert}", f"--key={key}", "--name=127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    if sys.platform != "win32":
        assert key.stat().st_mode & 0o077 == 0
    config = Config({"GilHub": {"ssl_cert": str(cert), "ssl_key": str(key)}})
    app = await start_test_hub(database_url, tmp_path / "data", config)
    try:
        assert app.public_url.startswith("https://")
        person = await add_person(app, "tls-user")
        await app.servers.start(person.user)
        async with httpx.AsyncClient(
            base_url=app.public_url, verify=ssl.create_default_context(cafile=cert), timeout=60
        ) as client:
            form = await client.get("/hub/login")
            assert form.status_code == 200
            assert form.headers["Strict-Transport-Security"].startswith("max-age=")
            assert "secure" in form.headers["Set-Cookie"].lower()  # the _xsrf cookie
            await hub_login(app, client)
            async with asyncio.timeout(120):
                while app.servers.status("tls-user").state != ServerState.RUNNING:
                    await asyncio.sleep(0.1)
            proxied = await client.get("/user/tls-user/api/status", headers=person.token_header)
            assert proxied.status_code == 200, proxied.text
            kernel = await client.post("/user/tls-user/api/kernels", headers=person.token_header)
            assert kernel.status_code == 201, kernel.text
        tls = ssl.create_default_context(cafile=cert)
        url = app.public_url.replace("https", "wss", 1)
        url += f"user/tls-user/api/kernels/{kernel.json()['id']}/channels"
        async with websockets.connect(url, additional_headers=person.token_header, ssl=tls) as ws:
            result, _ = await execute(ws, "6 * 7", "tls-session")
        assert result == "42"
    finally:
        await stop_test_hub(app)


async def hub_login(app, client: httpx.AsyncClient) -> None:
    """Log in as a new user through the form; the session cookie must be Secure."""
    await app.accounts.create("tls-login", "a-good-password")
    response = await client.post(
        "/hub/login",
        data={
            "username": "tls-login",
            "password": "a-good-password",
            "_xsrf": client.cookies["_xsrf"],
        },
    )
    assert response.status_code == 303, response.text
    session = [c for c in response.headers.get_list("Set-Cookie") if "gilhub-session" in c]
    assert session and "secure" in session[0].lower()


async def test_requests_that_once_answered_500_get_clear_client_errors(hub: RunningHub) -> None:
    name, browser = await logged_in_user(hub)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    assert (await browser.get("/hub/token/1/revoke")).status_code == 405
    for expires_in in (10**30, 1e30, True, "3600"):
        response = await api.post(f"/hub/api/users/{name}/tokens", json={"expires_in": expires_in})
        assert response.status_code == 400, (expires_in, response.text)
        assert "expires_in" in response.json()["message"]
    for label in (5, ["v1"], {"a": 1}):
        pushed = await api.post("/hub/api/repo/push", json={"source": "a.ipynb", "label": label})
        assert pushed.status_code == 400, (label, pushed.text)
        assert "label" in pushed.json()["message"]


async def test_pagination_links_come_from_the_hubs_url_not_the_host_header(hub: RunningHub):
    admin = hub.client(headers={"Authorization": f"token {await hub.token_for(hub.admin_name)}"})
    for _ in range(2):
        await hub.add_user()
    page = await admin.get(
        "/hub/api/users?limit=1",
        headers={"Accept": "application/jupyterhub-pagination+json", "Host": "evil.example"},
    )
    assert page.status_code == 200, page.text
    next_url = page.json()["_pagination"]["next"]["url"]
    assert next_url.startswith(hub.app.public_url.rstrip("/") + "/hub/api/users?")
    assert "evil" not in next_url
