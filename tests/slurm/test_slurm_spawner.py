"""User servers as jobs of a real single-node Slurm (fixtures in conftest.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import websockets
from sqlalchemy.engine import make_url

from gilhub.servers import ServerManager, ServerState
from gilhub.spawner.slurm import DEFAULT_BATCH_SCRIPT
from tests.hub.servers_harness import (
    TEST_ACCOUNT_PREFIX,
    add_person,
    execute,
    hub_url,
    server_python,
    start_and_wait,
    wait_for_state,
)
from tests.slurm.conftest import node_filled, user_account


def job_of(hub, name: str) -> str:
    return hub.servers._servers[name].spawner.job_id


async def test_a_server_started_through_slurm_is_used_through_the_proxy_then_stopped(
    slurm, slurm_hub
):
    hub = slurm_hub
    await user_account("ada")
    ada = await add_person(hub, "ada")
    events = await start_and_wait(hub, ada.user)
    assert events[-1]["ready"], events
    job_id = job_of(hub, "ada")
    assert slurm.job_states()[job_id] == "RUNNING"

    # secrets went by environment only: the script Slurm keeps names them, never holds them
    spawner = hub.servers._servers["ada"].spawner
    script = slurm.run("scontrol", "write", "batch_script", job_id, "-").stdout
    assert "JUPYTER_TOKEN" in script and "GILHUB_DB_URL" in script  # in --export=
    assert spawner.token not in script
    assert make_url(spawner.db_url).password not in script
    details = slurm.run("scontrol", "show", "job", job_id).stdout
    assert spawner.token not in details and f"UserId={TEST_ACCOUNT_PREFIX}ada" in details

    # the proxy forwards to the address the job reported, with the server's token
    upstream = hub.servers.upstream("ada")
    assert (upstream.host, upstream.port) == (spawner.host, spawner.port)
    async with httpx.AsyncClient(headers=ada.token_header, timeout=60) as client:
        saved = await client.put(
            hub_url(hub, "/user/ada/api/contents/hello.txt"),
            json={"type": "file", "format": "text", "content": "from a Slurm job"},
        )
        assert saved.status_code in (200, 201), saved.text
        read = await client.get(hub_url(hub, "/user/ada/api/contents/hello.txt"))
        assert read.json()["content"] == "from a Slurm job"

        created = await client.post(hub_url(hub, "/user/ada/api/kernels"), json={})
        assert created.status_code == 201, created.text
        kernel = created.json()["id"]
        url = hub_url(hub, f"/user/ada/api/kernels/{kernel}/channels", scheme="ws")
        async with websockets.connect(url, additional_headers=ada.token_header) as websocket:
            result, _ = await execute(websocket, "import os; os.environ['SLURM_JOB_ID']", "s")
        assert result == repr(job_id)

    output = Path(spawner.log_location())
    assert stat.S_IMODE(output.stat().st_mode) == 0o600  # the account's own, private

    await hub.servers.stop(ada.user)
    assert hub.servers.status("ada").state == ServerState.STOPPED
    assert slurm.job_states()[job_id] not in ("PENDING", "RUNNING", "COMPLETING")
    assert not output.exists()  # the server was stopped after it ran: nothing to look into


async def test_a_job_that_fails_at_once_is_a_clear_error_with_the_end_of_its_log(slurm_hub):
    hub = slurm_hub
    await user_account("bert")
    bert = await add_person(hub, "bert")
    failing = "import sys; print('cannot start: no scratch space'); sys.exit(3)"
    hub.config.SlurmSpawner.cmd = [server_python(), "-c", failing]
    try:
        events = await start_and_wait(hub, bert.user)
    finally:
        del hub.config.SlurmSpawner["cmd"]
    assert events[-1]["failed"], events
    assert "did not start" in events[-1]["message"]
    assert "exit code 3" in events[-1]["message"]
    status = hub.servers.status("bert")
    assert status.state == ServerState.STOPPED
    assert "cannot start: no scratch space" in status.log_tail
    assert status.log_location.endswith(".log") and "%j" not in status.log_location
    assert Path(status.log_location).exists()  # a failed job keeps its output


async def test_a_pending_job_shows_its_reason_and_only_its_server_may_report_an_address(
    slurm, slurm_hub
):
    hub = slurm_hub
    await user_account("cleo")
    cleo = await add_person(hub, "cleo")
    other = await add_person(hub, "dora")
    async with node_filled(slurm):
        await hub.servers.start(cleo.user)
        url = hub_url(hub, "/hub/api/users/cleo/server/progress")
        async with httpx.AsyncClient(headers=cleo.token_header, timeout=60) as client:
            async with client.stream("GET", url) as stream:
                async for line in stream.aiter_lines():
                    if "waiting for resources" in line:
                        break
            pending = json.loads(line.removeprefix("data: "))
            assert "Slurm queue" in pending["message"] and "(Resources)" in pending["message"]
            assert slurm.job_states()[job_of(hub, "cleo")] == "PENDING"

            # while it waits, nobody but its server can point the proxy somewhere
            address = hub_url(hub, "/hub/api/users/cleo/server/address")
            body = {"host": "127.0.0.1", "port": 9}
            for headers in (other.token_header, cleo.token_header, cleo.cookie_header, {}):
                refused = await client.post(address, json=body, headers=headers)
                assert refused.status_code == 403, refused.text
            own = {"Authorization": f"token {hub.servers._servers['cleo'].spawner.token}"}
            for bad in ({"host": "a b", "port": 1}, {"host": "h", "port": 0}, {"port": "1"}):
                malformed = await client.post(address, json=bad, headers=own)
                assert malformed.status_code == 400, malformed.text
    events = [event async for event in hub.servers.progress("cleo")]
    assert events[-1]["ready"], events
    await hub.servers.stop(cleo.user)


async def test_a_restarted_hub_readopts_a_job_on_another_address_and_notices_a_scancel(
    slurm, slurm_hub
):
    hub = slurm_hub
    await user_account("emil")
    emil = await add_person(hub, "emil")
    # a node at another address than the hub's (Linux routes all of 127/8 to loopback)
    elsewhere = DEFAULT_BATCH_SCRIPT.replace("address=$(", "address=127.0.0.2 # $(")
    hub.config.SlurmSpawner.batch_script = elsewhere
    try:
        events = await start_and_wait(hub, emil.user)
    finally:
        del hub.config.SlurmSpawner["batch_script"]
    assert events[-1]["ready"], events
    job_id, upstream = job_of(hub, "emil"), hub.servers.upstream("emil")
    assert upstream.host == "127.0.0.2"

    # a new manager (and with it a new Slurm queue), as in a new hub, from the database alone
    await hub.servers.shutdown()
    hub.servers = ServerManager(hub=hub, parent=hub)
    await hub.servers.restore()
    await wait_for_state(hub, "emil", ServerState.RUNNING)
    assert job_of(hub, "emil") == job_id
    assert hub.servers.upstream("emil") == upstream
    async with httpx.AsyncClient(headers=emil.token_header, timeout=60) as client:
        answer = await client.get(hub_url(hub, "/user/emil/api/status"))
        assert answer.status_code == 200, answer.text

    slurm.run("scancel", job_id)
    await wait_for_state(hub, "emil", ServerState.STOPPED)
    status = hub.servers.status("emil")
    assert status.error and f"Slurm job {job_id} was cancelled" in status.error
