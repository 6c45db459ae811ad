"""User servers as jobs of a real single-node Slurm (fixtures in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest
import websockets

from gilhub.servers import ServerState
from tests.hub.servers_harness import add_person, execute, hub_url, start_and_wait
from tests.slurm.conftest import user_account


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

    # the proxy forwards to the address the job reported, with the server's token
    upstream = hub.servers.upstream("ada")
    spawner = hub.servers._servers["ada"].spawner
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

    await hub.servers.stop(ada.user)
    assert hub.servers.status("ada").state == ServerState.STOPPED
    assert slurm.job_states()[job_id] not in ("PENDING", "RUNNING", "COMPLETING")
