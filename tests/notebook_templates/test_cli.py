"""``gilhub template list|new`` as real subprocesses against a real running hub."""

from __future__ import annotations

import os

import pytest

from gilhub.users import get_user_by_name
from tests.hub.conftest import RunningHub
from tests.notebook_templates.helpers import (
    NAMED_TEMPLATE,
    SAMPLEDB_TEMPLATE,
    push_template,
    run_injected,
    stored_notebook,
)
from tests.repository.test_cli import gilhub


@pytest.fixture(scope="module")
async def cli_env(hub: RunningHub, tmp_path_factory) -> dict[str, str]:
    await push_template(hub, SAMPLEDB_TEMPLATE)
    await push_template(hub, NAMED_TEMPLATE)
    await hub.add_user("dora")
    env = {k: v for k, v in os.environ.items() if k not in ("GILHUB_TOKEN", "GILHUB_URL")}
    return {**env, "GILHUB_URL": hub.url, "TOKEN": await hub.token_for("dora")}


async def test_list_shows_templates_and_their_parameters(cli_env):
    code, out, err = await gilhub(cli_env, "list", command="template")
    assert code == 0, err
    assert f"{SAMPLEDB_TEMPLATE}  (version 1)  Data analysis" in out
    assert '    measurement_name: str = "unknown"  # the measurement in SampleDB' in out


async def test_new_creates_the_filled_notebook_with_typed_values(hub, cli_env):
    code, out, err = await gilhub(
        cli_env,
        "new",
        NAMED_TEMPLATE,
        "--param",
        "measurement_name=Experiment-7",
        "--param",
        "threshold=0.25",
        "--param",
        'label="007"',
        "--param",
        "fit=true",
        command="template",
    )
    assert code == 0, err
    path = "Data_Analysis_Experiment-7.ipynb"
    assert f"Created {path}; open it at {hub.url}/user/dora/lab/tree/{path}" in out
    async with hub.app.db.connect() as conn:
        dora = await get_user_by_name(conn, "dora")
    values = run_injected(await stored_notebook(hub, dora.db_role, path))
    assert values == {
        "measurement_name": "Experiment-7",
        "threshold": 0.25,
        "label": "007",
        "fit": True,
    }


async def test_errors_exit_1_with_the_hubs_message(cli_env):
    code, _, err = await gilhub(cli_env, "new", "no/such.ipynb", command="template")
    assert code == 1 and "there is no template 'no/such.ipynb'" in err
    code, _, err = await gilhub(
        cli_env, "new", SAMPLEDB_TEMPLATE, "--param", "novalue", command="template"
    )
    assert code == 1 and "--param takes key=value" in err
    code, _, err = await gilhub(
        cli_env, "new", NAMED_TEMPLATE, "--on-exists", "fail", command="template"
    )
    assert code == 1 and "'measurement_name' is missing" in err
