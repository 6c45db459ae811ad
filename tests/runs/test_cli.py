"""``gilhub run`` as a real subprocess against a real running hub and real workers."""

from __future__ import annotations

import os

import pytest

from gilhub.repository.cli import CommandError
from gilhub.runs.cli import split_parameters
from tests.hub.conftest import RunningHub
from tests.repository.test_cli import gilhub
from tests.runs.helpers import Person, notebook, person


@pytest.fixture(scope="module")
async def carol(hub: RunningHub) -> Person:
    return await person(hub, "carol")


@pytest.fixture(scope="module")
async def cli_env(hub: RunningHub, carol: Person) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GILHUB_TOKEN", "GILHUB_URL")}
    return {**env, "GILHUB_URL": hub.url, "TOKEN": await hub.token_for("carol")}


def test_parameters_are_taken_as_name_value_pairs_or_name_equals_value():
    rest, parameters = split_parameters(
        ["nb.ipynb", "-p", "x", "21", "--wait", "-p", "names=[1, 2]", "-p", "label", "a b"]
    )
    assert rest == ["nb.ipynb", "--wait"]
    assert parameters == {"x": 21, "names": [1, 2], "label": "a b"}
    with pytest.raises(CommandError):
        split_parameters(["nb.ipynb", "-p", "x"])


async def test_run_wait_prints_messages_and_exits_zero_when_it_completes(carol, cli_env):
    await carol.save("calc.ipynb", notebook("print('answer', x * 2)", parameters="x = 1"))
    code, out, err = await gilhub(cli_env, "calc.ipynb", "-p", "x", "21", "--wait", command="run")
    assert code == 0, err
    assert "answer 42" in out and "status: completed" in out
    assert "output: runs/calc " in out


async def test_run_wait_exits_nonzero_with_the_error_when_the_run_fails(carol, cli_env):
    await carol.save("bad.ipynb", notebook("1 / 0"))
    code, out, err = await gilhub(cli_env, "bad.ipynb", "--wait", command="run")
    assert code == 1
    assert "ZeroDivisionError" in out and "failed" in err


async def test_run_without_wait_queues_and_says_where_to_follow_it(carol, cli_env):
    await carol.save("quick.ipynb", notebook("1"))
    code, out, err = await gilhub(cli_env, "quick.ipynb", command="run")
    assert code == 0, err
    assert "/hub/runs/" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.ipynb"], "No notebook"),
        (["quick.ipynb", "--kernel", "nokernel"], "No kernel named"),
        (["quick.ipynb", "-p", "not a name", "1"], "identifiers"),
    ],
)
async def test_run_refusals_are_said_and_exit_one(carol, cli_env, args, words):
    await carol.save("quick.ipynb", notebook("1"))
    code, _, err = await gilhub(cli_env, *args, command="run")
    assert code == 1 and words in err, err


async def test_run_without_a_token_says_how_to_give_one(cli_env):
    env = {k: v for k, v in cli_env.items() if k != "TOKEN"}
    env["TOKEN"] = ""
    code, _, err = await gilhub(env, "quick.ipynb", "--token-file", "/nonexistent", command="run")
    assert code == 1 and "GILHUB_TOKEN" in err
