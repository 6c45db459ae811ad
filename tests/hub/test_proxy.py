"""The /user/NAME/ proxy: access rules, header handling, streaming, keep-alive, WebSockets.

The hub is real and in-process; user servers are real jupyter_servers. Where a
test must see exactly what the proxy sends upstream (headers, byte counts), the
upstream is a small real Tornado "echo" server standing in for a user server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import uuid
from pathlib import Path

import httpx
import notebook
import psutil
import pytest
import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import InvalidStatus

from gilhub.contents import query
from gilhub.db import create_engine
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
    # answered before the body was read, after which tornado closes: the client is told
    assert api.headers["Connection"] == "close"
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


def font_fetch_headers(hub, page: str) -> dict[str, str]:
    """What chromium sends for a font a page's stylesheet uses (CORS mode, same origin)."""
    origin = hub_url(hub)
    return {
        "Accept": "*/*",
        "Origin": origin,
        "Referer": f"{origin}{page}",
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Dest": "font",
    }


async def test_notebook7_fonts_arrive_after_jupyterlab_served_their_namesakes(client, hub, people):
    """JupyterLab and Notebook 7 ship fonts under the same names; jupyter_server handed
    Notebook 7's route JupyterLab's copy and refused it (403)."""
    notebook_static = Path(notebook.__file__).parent / "static"
    fonts = sorted(path.name for path in notebook_static.glob("*.woff2"))
    assert fonts, f"no fonts in {notebook_static}"
    alice = people["alice"]
    for font in fonts:
        page = "/user/alice/lab"
        headers = {**alice.cookie_header, **font_fetch_headers(hub, page)}
        await client.get(f"/user/alice/static/lab/{font}", headers=headers)
        page = "/user/alice/notebooks/x.ipynb"
        headers = {**alice.cookie_header, **font_fetch_headers(hub, page)}
        response = await client.get(f"/user/alice/static/notebook/{font}", headers=headers)
        assert response.status_code == 200, (font, response.text)
        assert response.content == (notebook_static / font).read_bytes()
    others = {**people["bob"].cookie_header, **font_fetch_headers(hub, page)}
    refused = await client.get(f"/user/alice/static/notebook/{fonts[0]}", headers=others)
    assert refused.status_code == 403
    anonymous = await client.get(
        f"/user/alice/static/notebook/{fonts[0]}", headers=font_fetch_headers(hub, page)
    )
    assert anonymous.status_code == 403


async def test_notebook7_opens_in_the_storage_root(client, people):
    """Notebook 7 sends its file browser to ``preferredPath``, which must be a folder of the
    storage (it was the server's home folder, /home/NAME, which the storage lacks)."""
    page = await client.get("/user/alice/tree", headers=people["alice"].cookie_header)
    assert page.status_code == 200
    config = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)
    assert config is not None, page.text[:500]
    assert json.loads(config.group(1))["preferredPath"] == "/"


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


class ResponseHeaders(tornado.web.RequestHandler):
    """A response with repeated, custom and hop-by-hop headers."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/csv")
        self.add_header("Set-Cookie", "first=1; Path=/user/echo/")
        self.add_header("Set-Cookie", "second=2; Path=/user/echo/")
        self.set_header("X-Served-By", "echo")
        self.set_header("Keep-Alive", "timeout=99")
        self.set_header("Proxy-Authenticate", "Basic")
        self.write("a,b")


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


class EchoBody(tornado.web.RequestHandler):
    """Any method: what arrived, as the server read it."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def answer(self) -> None:
        self.write({"method": self.request.method, "body": self.request.body.decode("latin-1")})

    get = post = put = patch = delete = options = answer


class EchoSocket(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.write_message(json.dumps(dict(self.request.headers.get_all())))

    def on_message(self, message) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


#: Every path the echo server answered, in order.
ECHO_SERVER_LOG: list[str] = []


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
            (r"/user/echo/response-headers", ResponseHeaders),
            (r"/user/echo/cut-short", CutShort),
            (r"/user/echo/body", EchoBody),
        ],
        log_function=lambda handler: ECHO_SERVER_LOG.append(handler.request.path),
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


async def test_the_servers_response_headers_pass_through_except_hop_by_hop_ones(client, echo):
    response = await client.get("/user/echo/response-headers", headers=echo.token_header)
    assert response.status_code == 200 and response.text == "a,b"
    headers = response.headers
    assert headers["Content-Type"] == "text/csv"
    assert headers.get_list("Set-Cookie") == [
        "first=1; Path=/user/echo/",
        "second=2; Path=/user/echo/",
    ]
    assert headers["X-Served-By"] == "echo"
    assert "Keep-Alive" not in headers and "Proxy-Authenticate" not in headers
    # nothing of the hub's own pages' headers is added to a user server's answer
    assert "Content-Security-Policy" not in headers and "X-Frame-Options" not in headers


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


# -- request framing: a body can never turn into a request upstream --------------------


async def raw_exchange(hub, request: bytes, answers: int) -> list[tuple[int, bytes]]:
    """Send raw bytes on one connection to the hub; read ``answers`` responses (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.bound_port)
    try:
        writer.write(request)
        return [await read_response(reader) for _ in range(answers)]
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:] if line)
    }
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    return status, body


def raw_request(method: str, path: str, echo, headers: str = "", body: bytes = b"") -> bytes:
    auth = echo.token_header["Authorization"]
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
    return (head + headers + "\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


async def test_a_request_smuggled_in_a_chunked_delete_never_reaches_the_server(hub, echo):
    smuggled = raw_request("GET", "/user/echo/smuggled-marker", echo)
    attack = raw_request(
        "DELETE", "/user/echo/body", echo, "Transfer-Encoding: chunked\r\n", chunked(smuggled)
    )
    follow_up = raw_request("GET", "/user/echo/body", echo)
    ECHO_SERVER_LOG.clear()
    (status, body), (next_status, next_body) = await raw_exchange(hub, attack + follow_up, 2)
    assert status == 200
    assert json.loads(body) == {"method": "DELETE", "body": smuggled.decode("latin-1")}
    assert next_status == 200 and json.loads(next_body) == {"method": "GET", "body": ""}
    assert ECHO_SERVER_LOG == ["/user/echo/body", "/user/echo/body"]  # nothing smuggled
    # and the pooled upstream connection answers the next request with its own response
    again = await raw_exchange(hub, raw_request("OPTIONS", "/user/echo/body", echo), 1)
    assert json.loads(again[0][1])["method"] == "OPTIONS"


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS", "PATCH"])
async def test_a_body_on_any_method_arrives_whole_and_framed(hub, echo, method):
    payload = b"x" * 70_000 + b"\r\n\r\nGET /user/echo/smuggled HTTP/1.1\r\n\r\n"
    with_length = raw_request(
        method, "/user/echo/body", echo, f"Content-Length: {len(payload)}\r\n", payload
    )
    with_chunks = raw_request(
        method,
        "/user/echo/body",
        echo,
        "Transfer-Encoding: chunked\r\n",
        chunked(payload[:5], payload[5:]),
    )
    for status, body in await raw_exchange(hub, with_length + with_chunks, 2):
        assert status == 200
        assert json.loads(body) == {"method": method, "body": payload.decode("latin-1")}


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: +5\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ],
)
async def test_ambiguous_framing_is_refused_with_400(hub, echo, framing):
    ECHO_SERVER_LOG.clear()
    request = raw_request("POST", "/user/echo/body", echo, framing, b"0\r\n\r\n")
    [(status, body)] = await raw_exchange(hub, request, 1)
    assert status == 400 and json.loads(body)["status"] == 400
    assert ECHO_SERVER_LOG == []


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


# -- the hub's database gone ----------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_database_outage_is_a_503_logged_once_and_websockets_keep_working(hub, people):
    """The login check needs the database: without it the proxy answers 503 with
    Retry-After, logs the outage once (not once per request), and recovers by itself;
    an open kernel WebSocket needs no database and goes on working."""
    alice = people["alice"]
    dana = await add_person(hub, "dana")  # her token is not in the login cache yet
    async with httpx.AsyncClient(base_url=hub_url(hub), headers=alice.token_header) as client:
        kernel = (await client.post("/user/alice/api/kernels")).json()
    url = hub_url(hub, f"/user/alice/api/kernels/{kernel['id']}/channels", scheme="ws")
    records = Records()
    loggers = (logging.getLogger("tornado.application"), hub.log)
    for logger in loggers:
        logger.addHandler(records)
    working_db = hub.db
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        gone_port = probe.getsockname()[1]
    try:
        async with (
            websocket_connect(url, additional_headers=alice.cookie_header) as websocket,
            httpx.AsyncClient(base_url=hub_url(hub), timeout=60) as client,
        ):
            hub.db = create_engine(hub.db_url.set(port=gone_port))
            for _ in range(5):
                refused = await client.get("/user/dana/api/status", headers=dana.token_header)
                assert refused.status_code == 503
                assert refused.headers["Retry-After"] == "5"
                assert "database is not answering" in refused.json()["message"]
            result, _ = await execute(websocket, "6 * 7", uuid.uuid4().hex)
            assert result == "42"
            await hub.db.dispose()
            hub.db = working_db
            back = await client.get("/user/dana/api/status", headers=dana.token_header)
            assert back.status_code == 503 and "not running" in back.json()["message"]
    finally:
        hub.db = working_db
        for logger in loggers:
            logger.removeHandler(records)
    outage = [m for m in records.messages if "database" in m.lower()]
    assert len(outage) == 2, records.messages
    assert "is unavailable" in outage[0] and "available again" in outage[1]
    assert not any("Traceback" in m or "Uncaught" in m for m in records.messages)
