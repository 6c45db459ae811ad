"""``gilhub repo …`` as a real subprocess against a real running hub."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from gilhub.contents import query as contents
from gilhub.repository.notebooks import parse_notebook, serialize_notebook
from gilhub.users import get_user_by_name
from tests.hub.conftest import RunningHub
from tests.repository.helpers import notebook_bytes


@pytest.fixture(scope="module")
async def cli_env(hub: RunningHub, tmp_path_factory) -> dict[str, str]:
    user = await hub.add_user("carol")
    token = await hub.token_for("carol")
    async with hub.app.db.begin() as conn:
        await contents.write_file(
            conn, user.db_role, "work/iv.ipynb", notebook_bytes("sweep = load('iv.csv')")
        )
    token_file = tmp_path_factory.mktemp("cli") / "token"
    token_file.write_text(token + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("GILHUB_TOKEN", "GILHUB_URL")}
    return {**env, "GILHUB_URL": hub.url, "TOKEN_FILE": str(token_file), "TOKEN": token}


async def gilhub(env: dict[str, str], *args: str, token_in_env: bool = True, command: str = "repo"):
    """``gilhub COMMAND ARGS`` in a subprocess: its exit status, stdout and stderr."""
    env = dict(env)
    if token_in_env:
        env["GILHUB_TOKEN"] = env["TOKEN"]
    command_line = [sys.executable, "-c", "from gilhub.app import main; main()", command, *args]
    process = await asyncio.create_subprocess_exec(
        *command_line, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, out.decode(), err.decode()


async def test_push_log_search_diff_pull(cli_env):
    code, out, err = await gilhub(
        cli_env, "push", "work/iv.ipynb", "--to", "lab/iv.ipynb", "-m", "first sweep"
    )
    assert code == 0 and "Pushed lab/iv.ipynb version 1" in out, err
    code, out, err = await gilhub(cli_env, "push", "work/iv.ipynb", "--to", "lab/iv.ipynb")
    assert code == 0 and "unchanged" in out, err

    code, out, err = await gilhub(
        cli_env, "log", "lab/iv.ipynb", "--token-file", cli_env["TOKEN_FILE"], token_in_env=False
    )
    assert code == 0 and "carol" in out and "first sweep" in out, err

    code, out, _ = await gilhub(cli_env, "search", "sweep")
    assert "lab/iv.ipynb" in out and code == 0
    code, out, _ = await gilhub(cli_env, "search", "nothing-like-this")
    assert "No entry matches" in out

    code, out, err = await gilhub(cli_env, "diff", "lab/iv.ipynb", "--from", "1", "--to", "1")
    assert code == 0 and "version 1" in out, err

    code, out, err = await gilhub(cli_env, "pull", "lab/iv.ipynb", "--to", "copies/iv.ipynb")
    assert code == 0 and "Pulled lab/iv.ipynb version 1 to copies/iv.ipynb" in out, err
    code, out, err = await gilhub(cli_env, "pull", "lab/iv.ipynb", "--to", "copies/iv.ipynb")
    assert code == 0 and "already is version 1" in out, err
    code, out, err = await gilhub(cli_env, "pull", "lab/iv.ipynb", "--at", "7")
    assert code == 1 and "no version 7" in err


async def test_conflicts_exit_2_and_errors_exit_1(cli_env):
    code, _, err = await gilhub(cli_env, "push", "../etc/passwd")
    assert code == 1 and "'..'" in err
    code, _, err = await gilhub(cli_env, "push", "work/iv.ipynb", "--to", "lab/other.ipynb")
    assert code == 0, err
    code, _, err = await gilhub(cli_env, "pull", "lab/other.ipynb", "--to", "work/iv.ipynb")
    assert code == 2 and "--beside" in err
    code, out, err = await gilhub(
        cli_env, "pull", "lab/other.ipynb", "--to", "work/iv.ipynb", "--beside"
    )
    assert code == 0 and "work/iv (2).ipynb" in out, err
    env_without_token = {k: v for k, v in cli_env.items() if k != "GILHUB_TOKEN"}
    code, _, err = await gilhub(
        env_without_token,
        "search",
        "x",
        "--token-file",
        "/nonexistent/token",
        token_in_env=False,
    )
    assert code == 1 and "GILHUB_TOKEN" in err
    bad_token = {**cli_env, "TOKEN": "not-a-token"}
    code, _, err = await gilhub(bad_token, "search", "x")
    assert code == 1 and "Login required" in err


async def test_push_merge_after_a_conflict(cli_env, hub: RunningHub):
    dave = await hub.add_user("dave")
    dave_api = hub.client(headers={"Authorization": f"token {await hub.token_for('dave')}"})
    await save(hub, "carol", "work/m.ipynb", notebook_bytes("x = 1", "y = 1"))
    code, _, err = await gilhub(cli_env, "push", "work/m.ipynb", "--to", "lab/merge.ipynb")
    assert code == 0, err
    assert (await dave_api.post("/hub/api/repo/pull", json={"path": "lab/merge.ipynb"})).is_success
    async with hub.app.db.connect() as conn:
        record = await contents.read_file(conn, dave.db_role, "lab/merge.ipynb")
    notebook = parse_notebook(record.content)
    notebook.cells[0].source = "x = 2  # dave"
    await save(hub, "dave", "lab/merge.ipynb", serialize_notebook(notebook))
    pushed = await dave_api.post("/hub/api/repo/push", json={"source": "lab/merge.ipynb"})
    assert pushed.status_code == 201, pushed.text

    await save(hub, "carol", "work/m.ipynb", notebook_bytes("x = 1", "y = 2  # carol"))
    code, _, err = await gilhub(cli_env, "push", "work/m.ipynb", "--to", "lab/merge.ipynb")
    assert code == 2 and "--merge" in err and "dave" in err
    code, out, err = await gilhub(
        cli_env, "push", "work/m.ipynb", "--to", "lab/merge.ipynb", "--merge"
    )
    assert code == 0 and "Merged" in out and "version 3" in out, err
    code, out, _ = await gilhub(cli_env, "diff", "lab/merge.ipynb", "--from", "1", "--to", "3")
    assert "+x = 2  # dave" in out and "+y = 2  # carol" in out


async def save(hub: RunningHub, name: str, path: str, content: bytes) -> None:
    async with hub.app.db.begin() as conn:
        user = await get_user_by_name(conn, name)
        await contents.write_file(conn, user.db_role, path, content)
