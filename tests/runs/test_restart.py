"""A run goes on while the hub restarts: the next hub finds its worker and sees it end."""

from __future__ import annotations

import psutil
import pytest
from sqlalchemy import select

from gilhub.runs.schema import runs
from tests.hub.conftest import running_hub
from tests.runs.helpers import notebook, person


async def test_a_run_is_readopted_after_a_hub_restart_and_completes(
    database_url, tmp_path_factory: pytest.TempPathFactory
):
    data_dir = tmp_path_factory.mktemp("restart")
    slow = notebook("import time\ntime.sleep(3)", "time.sleep(1)", "print('finished')")
    async with running_hub(database_url, data_dir) as first:
        alice = await person(first, "alice")
        await alice.save("slow.ipynb", slow)
        run = await alice.start("slow.ipynb")
        await alice.wait_for(run, lambda model: model["current_cell"] == 0)

    async with running_hub(database_url, data_dir) as second:
        alice.hub = second
        alice.api = second.client(
            headers={"Authorization": f"token {await second.token_for('alice')}"}
        )
        done = await alice.finished(run)
        assert done["status"] == "completed", done["error"]
        assert (done["cells_done"], done["cells_total"]) == (3, 3)
        assert "finished" in (await alice.load(done["output_path"])).decode()


async def test_a_run_whose_worker_ended_while_no_hub_ran_is_marked_failed(
    database_url, tmp_path_factory: pytest.TempPathFactory
):
    data_dir = tmp_path_factory.mktemp("vanished")
    async with running_hub(database_url, data_dir) as first:
        bob = await person(first, "bob")
        await bob.save("sleepy.ipynb", notebook("import time\ntime.sleep(600)"))
        run = await bob.start("sleepy.ipynb")
        await bob.wait_for(run, lambda model: model["current_cell"] == 0)
        async with first.app.db.connect() as conn:
            query = select(runs.c.worker).where(runs.c.id == run["id"])
            worker = psutil.Process((await conn.execute(query)).scalar()["pid"])
    tree = [worker, *worker.children(recursive=True)]
    for process in tree:
        process.kill()
    psutil.wait_procs(tree, timeout=30)

    async with running_hub(database_url, data_dir) as second:
        await bob.move_to(second)
        done = await bob.finished(run)
        assert done["status"] == "failed"
        assert "gone when the hub looked for it" in done["error"]["evalue"]
