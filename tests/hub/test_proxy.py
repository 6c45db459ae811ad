"""The /user/NAME/ proxy: access rules, header handling, streaming, keep-alive, WebSockets.

The hub is real and in-process; user servers are real jupyter_servers. Where a
test must see exactly what the proxy sends upstream (headers, byte counts), the
upstream is a small real Tornado "echo" server standing in for a user server.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid

import httpx
import psutil
import pytest
import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import InvalidStatus

from gilhub.contents import query
from gilhub.servers import Upstream
from tests.hub.servers_harness import (
    add_person,
    execute,
    hub_url,
    start_and_wait,
    start_hub,
    stop_hub,
)

MiB = 1024 * 1024


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory):
    hub = await start_hub(database_url, tmp_path_factory.mktemp("hub"))
    try:
        yield hub
    finally:
        await stop_hub(hub)


@pytest.fixture(scope="module")
async def people(hub):
    people = {
        name: await add_person(hub, name, admin=name == "root")
        for name in ("alice", "bob", "root", "echo")
    }
    assert (await start_and_wait(hub, people["alice"].user))[-1]["ready"]
    return people


@pytest.fixture
async def client(hub):
    async with httpx.AsyncClient(base_url=hub_url(hub), timeout=60) as client:
        yield client


# -- who may pass -----------------------------------------------------------------


async def test_owner_reaches_the_server_with_token_or_cookie(client, people):
    alice = people["alice"]
    for headers in (alice.token_header, alice.cookie_header):
        response = await client.get("/user/alice/api/status", headers=headers)
        assert response.status_code == 200, response.text
        assert "started" in response.json()


async def test_no_login_is_refused_or_sent_to_log_in(client, people):
    api = await client.get("/user/alice/api/status")
    assert api.status_code == 403
    assert api.json()["status"] == 403
    page = await client.get("/user/alice/lab", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/hub/login?next=%2Fuser%2Falice%2Flab")


async def test_alice_cannot_reach_bobs_server_nor_admins_by_default(client, hub, people):
    response = await client.get("/user/bob/api/status", headers=people["alice"].cookie_header)
    assert response.status_code == 403
    as_admin = await client.get("/user/alice/api/status", headers=people["root"].token_header)
    assert as_admin.status_code == 403
    hub.admin_access = True
    try:
        as_admin = await client.get("/user/alice/api/status", headers=people["root"].token_header)
        assert as_admin.status_code == 200
    finally:
        hub.admin_access = False


async def test_a_stopped_server_offers_to_start_or_answers_503(client, people):
    bob = people["bob"]
    page = await client.get(
        "/user/bob/tree?x=1", headers={**bob.cookie_header, "Accept": "text/html"}
    )
    assert page.status_code == 302
    assert page.headers["Location"] == "/hub/spawn/bob?next=%2Fuser%2Fbob%2Ftree%3Fx%3D1"
    api = await client.get("/user/bob/api/status", headers=bob.token_header)
    assert api.status_code == 503
    assert "not running" in api.json()["message"]


async def test_the_browser_never_sees_the_server_token(client, hub, people):
    token = hub.servers.upstream("alice").token
    page = await client.get("/user/alice/lab", headers=people["alice"].cookie_header)
    assert page.status_code == 200
    assert "jupyter-config-data" in page.text
    assert token not in page.text
    assert '"hubPrefix": "/hub/"' in page.text and '"hubUser": "alice"' in page.text
    assert token not in str(page.headers)


# -- through to the real server -------------------------------------------------------


async def test_files_saved_through_the_proxy_land_in_the_users_storage(client, hub, people):
    alice = people["alice"]
    model = {"type": "file", "format": "text", "content": "hello <from> alice\n"}
    saved = await client.put(
        "/user/alice/api/contents/hello.txt", json=model, headers=alice.cookie_header
    )
    assert saved.status_code in (200, 201), saved.text
    async with hub.db.connect() as conn:
        record = await query.read_file(conn, alice.user.db_role, "hello.txt")
    assert record is not None and record.content == b"hello <from> alice\n"
    listed = await client.get("/user/alice/api/contents", headers=alice.token_header)
    assert [item["name"] for item in listed.json()["content"]] == ["hello.txt"]


async def test_requests_reuse_kept_alive_upstream_connections(client, hub, people):
    for _ in range(5):
        response = await client.get("/user/alice/api/status", headers=people["alice"].token_header)
        assert response.status_code == 200
    upstream = hub.servers.upstream("alice")
    idle = hub.upstream_pool._idle[(upstream.host, upstream.port)]
    assert len(idle) == 1


async def test_kernel_websocket_through_the_proxy(hub, people):
    alice = people["alice"]
    async with httpx.AsyncClient(base_url=hub_url(hub), headers=alice.token_header) as client:
        kernel = (await client.post("/user/alice/api/kernels")).json()
    url = hub_url(hub, f"/user/alice/api/kernels/{kernel['id']}/channels", scheme="ws")
    async with websocket_connect(url, additional_headers=alice.cookie_header) as websocket:
        result, _ = await execute(websocket, "40 + 2", uuid.uuid4().hex)
    assert result == "42"


async def test_websocket_upgrade_without_login_is_refused(hub, people):
    url = hub_url(hub, "/user/alice/api/kernels/x/channels", scheme="ws")
    with pytest.raises(InvalidStatus) as refused:
        async with websocket_connect(url):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        async with websocket_connect(url, additional_headers=people["bob"].cookie_header):
            pass
    assert refused.value.response.status_code == 403


# -- what exactly goes upstream: a Tornado echo server as the user's server ------------


class EchoHeaders(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({name: value for name, value in self.request.headers.get_all()})


class Download(tornado.web.RequestHandler):
    def head(self) -> None:
        self.set_header("Content-Length", str(int(self.get_argument("mib")) * MiB))

    async def get(self) -> None:
        size = int(self.get_argument("mib")) * MiB
        chunk = b"x" * (256 * 1024)
        self.set_header("Content-Length", str(size))
        for _ in range(size // len(chunk)):
            self.write(chunk)
            await self.flush()


@tornado.web.stream_request_body
class Upload(tornado.web.RequestHandler):
    def prepare(self) -> None:
        self.request.connection.set_max_body_size(1 << 40)
        self.received = 0
        self.digest = hashlib.sha256()

    def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.digest.update(chunk)

    def put(self) -> None:
        self.write({"received": self.received, "sha256": self.digest.hexdigest()})


class Status(tornado.web.RequestHandler):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        if int(code) == 200:
            self.set_header("ETag", '"v1"')
            self.write("fresh")


class Chunked(tornado.web.RequestHandler):
    async def get(self) -> None:
        for part in ("one,", "two,", "three"):
            self.write(part)
            await self.flush()  # no Content-Length: the response is chunked


class CutShort(tornado.web.RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Length", "1000")
        self.write(b"x" * 10)
        await self.flush()
        self.request.connection.stream.close()


class EchoSocket(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.write_message(json.dumps(dict(self.request.headers.get_all())))

    def on_message(self, message) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


@pytest.fixture(scope="module")
async def echo(hub, people):
    app = tornado.web.Application(
        [
            (r"/user/echo/headers", EchoHeaders),
            (r"/user/echo/download", Download),
            (r"/user/echo/upload", Upload),
            (r"/user/echo/socket", EchoSocket),
            (r"/user/echo/status/(\d+)", Status),
            (r"/user/echo/chunked", Chunked),
            (r"/user/echo/cut-short", CutShort),
        ]
    )
    server = HTTPServer(app, max_body_size=1 << 40)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    upstream = Upstream("127.0.0.1", sockets[0].getsockname()[1], "echo-server-token")
    real_upstream = hub.servers.upstream
    hub.servers.upstream = lambda name: upstream if name == "echo" else real_upstream(name)
    try:
        yield people["echo"]
    finally:
        hub.servers.upstream = real_upstream
        server.stop()
        await server.close_all_connections()


async def test_headers_sent_upstream(client, echo):
    response = await client.get(
        "/user/echo/headers",
        headers={
            "Cookie": f"{echo.cookie_header['Cookie']}; _xsrf=abc; other=1",
            "Origin": "http://lab.example.org",
            "X-Forwarded-For": "6.6.6.6",
        },
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["Authorization"] == "token echo-server-token"
    assert seen["Cookie"] == "_xsrf=abc; other=1"  # the hub's session cookie is not passed
    assert seen["Host"] == client.base_url.netloc.decode()
    assert seen["Origin"] == "http://lab.example.org"
    assert seen["X-Forwarded-For"] == "127.0.0.1"  # not the client's claim
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == client.base_url.netloc.decode()


async def test_hub_token_is_replaced_by_the_server_token(client, echo):
    response = await client.get("/user/echo/headers", headers=echo.token_header)
    assert response.json()["Authorization"] == "token echo-server-token"


async def test_head_204_304_and_chunked_responses_pass_through(client, hub, echo):
    auth = echo.token_header
    head = await client.head("/user/echo/download?mib=1", headers=auth)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(MiB)
    assert head.content == b""
    assert (await client.get("/user/echo/status/204", headers=auth)).status_code == 204
    fresh = await client.get("/user/echo/status/200", headers=auth)
    assert fresh.text == "fresh" and fresh.headers["ETag"] == '"v1"'
    not_modified = await client.get(
        "/user/echo/status/304", headers={**auth, "If-None-Match": '"v1"'}
    )
    assert not_modified.status_code == 304 and not_modified.content == b""
    chunked = await client.get("/user/echo/chunked", headers=auth)
    assert chunked.text == "one,two,three"
    teapot = await client.get("/user/echo/status/418", headers=auth)
    assert teapot.status_code == 418
    # every one of those left its upstream connection reusable
    upstream = hub.servers.upstream("echo")
    assert len(hub.upstream_pool._idle[(upstream.host, upstream.port)]) == 1


async def test_an_upstream_dying_mid_response_never_looks_complete(client, echo):
    """Cut before anything reached the browser: a 503; after: the connection is cut too."""
    try:
        response = await client.get("/user/echo/cut-short", headers=echo.token_header)
    except httpx.RemoteProtocolError:
        pass
    else:
        assert response.status_code == 503
    assert (await client.get("/user/echo/chunked", headers=echo.token_header)).status_code == 200


async def test_an_unreachable_server_is_a_503(client, hub, people, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gone = Upstream("127.0.0.1", closed_port, "t")
    monkeypatch.setattr(hub.servers, "upstream", lambda name: gone)
    response = await client.get("/user/alice/api/status", headers=people["alice"].token_header)
    assert response.status_code == 503
    assert response.json()["message"] == "The user server is not answering."


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / MiB


async def test_big_download_and_upload_stream_without_buffering(client, echo):
    """The hub runs in this process: its memory must not grow with the transfer size."""
    before = rss_mib()
    peak = before
    received = 0
    async with client.stream("GET", "/user/echo/download?mib=256", headers=echo.token_header) as r:
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(256 * MiB)
        async for chunk in r.aiter_raw():
            received += len(chunk)
            peak = max(peak, rss_mib())
    assert received == 256 * MiB

    block = bytes(range(256)) * 1024
    digest = hashlib.sha256()

    async def body():
        nonlocal peak
        for _ in range(128 * MiB // len(block)):
            digest.update(block)
            peak = max(peak, rss_mib())
            yield block

    uploaded = await client.put(
        "/user/echo/upload", content=body(), headers={**echo.token_header, "Expect": "100-continue"}
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {"received": 128 * MiB, "sha256": digest.hexdigest()}
    grown = peak - before
    print(f"hub+client RSS growth during 256 MiB down + 128 MiB up: {grown:.1f} MiB")
    assert grown < 50


async def test_websocket_handshake_headers_and_raw_piping(hub, echo):
    url = hub_url(hub, "/user/echo/socket", scheme="ws")
    async with websocket_connect(url, additional_headers=echo.cookie_header) as websocket:
        handshake = json.loads(await websocket.recv())
        assert handshake["Authorization"] == "token echo-server-token"
        assert "gilhub-session" not in handshake.get("Cookie", "")
        big = "é" * 300_000
        await websocket.send(big)
        assert await websocket.recv() == big
        await websocket.send(b"\x00\x01binary")
        assert await websocket.recv() == b"\x00\x01binary"
