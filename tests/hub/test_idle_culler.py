"""JupyterHub's own idle culler (PyPI ``jupyterhub-idle-culler``) works against gilhub.

The culler speaks only JupyterHub's REST API: it lists users with their servers, reads
``last_activity``, and stops idle servers with ``DELETE /users/NAME/server``. Pointed at
gilhub's ``/hub/api`` with a gilhub API token, it must stop an idle server (gilhub's own
culling stays off, as it is by default).
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.hub.conftest import RunningHub
from tests.hub.test_end_to_end import new_person, server_model, start_server, wait_until_gone

pytestmark = pytest.mark.timeout(300)


async def test_jupyterhub_idle_culler_stops_an_idle_server(hub: RunningHub) -> None:
    assert not hub.app.servers.cull_idle_timeout, "gilhub's own culler must not do the work"
    name, client = await new_person(hub)
    await start_server(client, name)
    admin_token = await hub.token_for(hub.admin_name)

    culler = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--url={hub.url}/hub/api",
        "--timeout=2",
        "--cull-every=1",
        env={"JUPYTERHUB_API_TOKEN": admin_token, "PATH": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await wait_until_gone(client, name)
    finally:
        if culler.returncode is None:
            culler.terminate()
        output = (await culler.communicate())[0].decode(errors="replace")
    assert f"Culling server {name}" in output, output
    assert "Traceback" not in output, output
    assert await server_model(client, name) is None
    assert (await client.get(f"/user/{name}/api/status")).status_code == 503
