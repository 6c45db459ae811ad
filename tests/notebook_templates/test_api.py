"""``/hub/api/templates``: listing, instantiating, and every bad input, over real HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gilhub.auth.tokens import create_token
from gilhub.contents import query as contents
from gilhub.notebook_templates.params import MAX_PARAMS_BYTES
from gilhub.notebook_templates.service import Templates, TemplateService
from gilhub.repository import notebooks, store
from tests.hub.conftest import RunningHub
from tests.notebook_templates.helpers import (
    NAMED_TEMPLATE,
    SAMPLEDB_TEMPLATE,
    injected_cell,
    push_template,
    run_injected,
    stored_notebook,
    template_bytes,
)

TRICKY = {
    "quotes": 'it\'s "quoted"',
    "triple": "a \"\"\"docstring\"\"\" and '''another'''",
    "newlines": "line one\nline two\r\n\ttabbed",
    "backslashes": "C:\\data\\new\\x41 \\u00e9 \\",
    "unicode": "Größe µm – 測定 🧪",
    "flag": True,
    "nothing": None,
    "count": 12345,
    "negative": -7,
    "ratio": 0.125,
    "big": 2**62,
    "listed": [1, "two", None, False, [3.5]],
    "mapping": {'a "key"': {"nested": ["x\ny"]}, "ü": 1},
}


class Person:
    def __init__(self, user, api: httpx.AsyncClient) -> None:
        self.user, self.api = user, api

    async def instantiate(self, template: str, params: dict | None = None, **body):
        return await self.api.post(
            "/hub/api/templates/instantiate",
            json={"template": template, "params": params or {}, **body},
        )


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> dict[str, Person]:
    await push_template(hub, SAMPLEDB_TEMPLATE)
    await push_template(hub, NAMED_TEMPLATE)
    found = {}
    for name in ("alice", "bob"):
        user = await hub.add_user(hub.unique_name(name))
        api = hub.client(headers={"Authorization": f"token {await hub.token_for(user.name)}"})
        found[name] = Person(user, api)
    return found


async def test_list_shows_title_folder_and_parameters(people):
    response = await people["alice"].api.get("/hub/api/templates")
    assert response.status_code == 200, response.text
    listed = {t["name"]: t for t in response.json()["templates"]}
    template = listed[SAMPLEDB_TEMPLATE]
    assert template["path"] == "templates/" + SAMPLEDB_TEMPLATE
    assert template["folder"] == "some_instrument"
    assert template["title"] == "Data analysis"
    assert template["description"] == "Analyses one measurement from SampleDB."
    assert template["parameters"] == [
        {
            "name": "measurement_name",
            "type": "str",
            "default": '"unknown"',
            "value": "unknown",
            "help": "the measurement in SampleDB",
        },
        {
            "name": "created",
            "type": "str",
            "default": '""',
            "value": "",
            "help": "when it was made",
        },
        {
            "name": "threshold",
            "type": "float",
            "default": "0.5",
            "value": 0.5,
            "help": "counts below are noise",
        },
    ]


async def test_instantiate_writes_real_literals_after_the_parameters_cell(hub, people):
    alice = people["alice"]
    response = await alice.instantiate(SAMPLEDB_TEMPLATE, TRICKY, destination="tricky.ipynb")
    assert response.status_code == 201, response.text
    assert response.json()["path"] == "tricky.ipynb"
    assert response.json()["url"] == f"/user/{alice.user.name}/lab/tree/tricky.ipynb"
    notebook = await stored_notebook(hub, alice.user.db_role, "tricky.ipynb")
    index, _ = injected_cell(notebook)
    assert index == 2  # right after the template's parameters cell
    assert "parameters" in notebook.cells[1].metadata["tags"]
    assert run_injected(notebook) == TRICKY
    values = run_injected(notebook)
    assert values["flag"] is True and values["nothing"] is None and isinstance(values["count"], int)
    record = notebook.metadata["gilhub"]["template"]
    assert record["path"] == "templates/" + SAMPLEDB_TEMPLATE
    assert record["version"] == 1
    assert record["params"] == TRICKY


async def test_without_a_parameters_cell_the_injected_cell_is_second(hub, people):
    plain = json.loads(template_bytes())
    del plain["cells"][1]["metadata"]["tags"]
    await push_template(hub, "plain.ipynb", json.dumps(plain).encode())
    response = await people["alice"].instantiate("plain.ipynb", {"x": 1})
    assert response.status_code == 201, response.text
    notebook = await stored_notebook(hub, people["alice"].user.db_role, "plain.ipynb")
    assert injected_cell(notebook)[0] == 1
    assert run_injected(notebook) == {"x": 1}


async def test_other_kernels_get_their_own_literals(hub, people):
    await push_template(hub, "r_analysis.ipynb", template_bytes(kernel="ir", language="R"))
    response = await people["alice"].instantiate("r_analysis.ipynb", {"ok": True, "n": None})
    assert response.status_code == 201, response.text
    notebook = await stored_notebook(hub, people["alice"].user.db_role, "r_analysis.ipynb")
    source = injected_cell(notebook)[1].source
    assert "ok = TRUE" in source and "n = NULL" in source


async def test_file_names_are_filled_with_safe_values(hub, people):
    alice = people["alice"]
    response = await alice.instantiate(NAMED_TEMPLATE, {"measurement_name": "Experiment-12345"})
    assert response.status_code == 201, response.text
    assert response.json()["path"] == "Data_Analysis_Experiment-12345.ipynb"
    evil = {"measurement_name": "../../etc/passwd\x00\n.."}
    response = await alice.instantiate(NAMED_TEMPLATE, evil)
    assert response.status_code == 201, response.text
    path = response.json()["path"]
    assert "/" not in path and ".." not in path and "\x00" not in path and "\n" not in path
    assert path.startswith("Data_Analysis_") and path.endswith(".ipynb")
    long = await alice.instantiate(NAMED_TEMPLATE, {"measurement_name": "x" * 5000})
    assert long.status_code == 201 and len(long.json()["path"]) < 150


async def test_a_missing_placeholder_value_is_named(people):
    response = await people["alice"].instantiate(NAMED_TEMPLATE, {"created": "today"})
    assert response.status_code == 400
    assert "'measurement_name' is missing" in response.json()["message"]


async def test_placeholders_are_plain_names_never_expressions(hub, people):
    for name in ("evil_{a.__class__}.ipynb", "evil_{a[0]}.ipynb", "evil_{a!r}.ipynb"):
        await push_template(hub, name)
        response = await people["alice"].instantiate(name, {"a": "x"})
        assert response.status_code == 400, response.text
        assert "not a plain {name}" in response.json()["message"]


async def test_same_template_twice_at_once_gives_two_files_and_overwrites_nothing(hub, people):
    alice = people["alice"]
    async with hub.app.db.begin() as conn:
        await contents.write_file(conn, alice.user.db_role, "mine/run.ipynb", b"my own work")
    same = [
        alice.instantiate(SAMPLEDB_TEMPLATE, {"i": i}, destination="mine/run.ipynb") for i in (1, 2)
    ]
    answers = await asyncio.gather(*same)
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    paths = sorted(a.json()["path"] for a in answers)
    assert paths == ["mine/run-1.ipynb", "mine/run-2.ipynb"]
    async with hub.app.db.connect() as conn:
        mine = await contents.read_file(conn, alice.user.db_role, "mine/run.ipynb")
    assert mine.content == b"my own work"
    values = [run_injected(await stored_notebook(hub, alice.user.db_role, p)) for p in paths]
    assert sorted(v["i"] for v in values) == [1, 2]


async def test_on_exists_open_and_fail(people):
    alice = people["alice"]
    first = await alice.instantiate(SAMPLEDB_TEMPLATE, {"a": 1}, destination="once.ipynb")
    assert first.status_code == 201
    opened = await alice.instantiate(
        SAMPLEDB_TEMPLATE, {"a": 2}, destination="once.ipynb", on_exists="open"
    )
    assert opened.status_code == 200 and opened.json() | {"url": ""} == {
        "path": "once.ipynb",
        "url": "",
        "created": False,
    }
    failed = await alice.instantiate(
        SAMPLEDB_TEMPLATE, {"a": 3}, destination="once.ipynb", on_exists="fail"
    )
    assert failed.status_code == 409 and "already have 'once.ipynb'" in failed.json()["message"]
    odd = await alice.instantiate(SAMPLEDB_TEMPLATE, {}, on_exists="overwrite")
    assert odd.status_code == 400 and "on_exists" in odd.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"template": "nothing/here.ipynb"}, 404, "no template 'nothing/here.ipynb'"),
        ({"template": "../templates/" + SAMPLEDB_TEMPLATE}, 400, "'..'"),
        ({"template": SAMPLEDB_TEMPLATE, "params": [1, 2]}, 400, "must be a JSON object"),
        ({"template": SAMPLEDB_TEMPLATE, "params": "{}"}, 400, "must be a JSON object"),
        ({"template": SAMPLEDB_TEMPLATE, "params": []}, 400, "must be a JSON object"),
        ({"template": SAMPLEDB_TEMPLATE, "params": {"not-a-name": 1}}, 400, "not an identifier"),
        ({"template": SAMPLEDB_TEMPLATE, "params": {"class": 1}}, 400, "not an identifier"),
        ({"template": SAMPLEDB_TEMPLATE, "params": {"n": 2**64}}, 400, "too large"),
        ({"template": SAMPLEDB_TEMPLATE, "destination": "../x.ipynb"}, 400, "'..'"),
        ({"template": SAMPLEDB_TEMPLATE, "destination": "notes.txt"}, 400, ".ipynb"),
        (
            {"template": SAMPLEDB_TEMPLATE, "destination": "once.ipynb/x.ipynb"},
            400,
            "not a directory",
        ),
        ({"template": SAMPLEDB_TEMPLATE, "version": 99}, 400, "no version 99"),
    ],
)
async def test_bad_requests_get_clear_errors(people, body, status, message):
    response = await people["alice"].api.post("/hub/api/templates/instantiate", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]


async def test_bad_json_and_too_large_bodies(people):
    api = people["alice"].api
    broken = await api.post("/hub/api/templates/instantiate", content=b"{not json")
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["message"]
    deep = {"template": SAMPLEDB_TEMPLATE, "params": {"deep": json.loads("[" * 100 + "]" * 100)}}
    nested = await api.post("/hub/api/templates/instantiate", json=deep)
    assert nested.status_code == 400 and "nested" in nested.json()["message"]
    huge = {"template": SAMPLEDB_TEMPLATE, "params": {"blob": "x" * (MAX_PARAMS_BYTES + 10_000)}}
    too_large = await api.post("/hub/api/templates/instantiate", json=huge)
    assert too_large.status_code == 413, too_large.text


async def test_api_needs_a_login_and_writes_only_to_the_callers_storage(hub, people):
    anonymous = hub.client()
    assert (await anonymous.get("/hub/api/templates")).status_code == 403
    refused = await anonymous.post(
        "/hub/api/templates/instantiate", json={"template": SAMPLEDB_TEMPLATE}
    )
    assert refused.status_code == 403
    alice, bob = people["alice"], people["bob"]
    sneaky = await alice.instantiate(
        SAMPLEDB_TEMPLATE, {}, destination=f"../{bob.user.db_role}/alice-was-here.ipynb"
    )
    assert sneaky.status_code == 400
    created = await alice.instantiate(SAMPLEDB_TEMPLATE, {}, destination="alice-only.ipynb")
    assert created.status_code == 201
    assert await stored_notebook(hub, bob.user.db_role, "alice-only.ipynb") is None
    assert await stored_notebook(hub, alice.user.db_role, "alice-only.ipynb") is not None
    # a cookie without the XSRF token is refused (another site cannot make the call)
    web = await hub.login(bob.user.name, "a-good-password")
    no_xsrf = await web.post("/hub/api/templates/instantiate", json={"template": SAMPLEDB_TEMPLATE})
    assert no_xsrf.status_code == 403
    assert await stored_notebook(hub, bob.user.db_role, "data_analysis.ipynb") is None


async def test_the_prefix_is_configurable(hub):
    async with hub.app.db.begin() as conn:
        prepared = notebooks.prepare_push(
            "lab/shared/fit.ipynb", template_bytes("Fit"), strip=True, max_size=10**7
        )
        await store.push(
            conn, path="lab/shared/fit.ipynb", prepared=prepared, author="boss", base=None
        )
    service = TemplateService(engine=hub.app.db, config=Templates(prefix="/lab/shared"))
    assert [t.name for t in await service.list_templates()] == ["fit.ipynb"]
    default = TemplateService(engine=hub.app.db, config=Templates())
    assert "fit.ipynb" not in [t.name for t in await default.list_templates()]


async def test_a_language_papermill_cannot_write_is_refused_and_still_listed(hub, people):
    await push_template(hub, "cobol.ipynb", template_bytes(kernel="cobol", language="cobol"))
    response = await people["alice"].instantiate("cobol.ipynb", {"a": 1})
    assert response.status_code == 422, response.text
    assert "papermill cannot write parameters" in response.json()["message"]
    assert await stored_notebook(hub, people["alice"].user.db_role, "cobol.ipynb") is None
    listed = (await people["alice"].api.get("/hub/api/templates")).json()["templates"]
    assert "cobol.ipynb" in [t["name"] for t in listed]


async def test_tokens_need_the_repository_scopes(hub, people):
    alice = people["alice"].user
    async with hub.app.db.begin() as conn:
        read_only = (await create_token(conn, alice.id, scopes=("read:repo",))).token
        unrelated = (await create_token(conn, alice.id, scopes=("read:bib",))).token
    reader = hub.client(headers={"Authorization": f"token {read_only}"})
    assert (await reader.get("/hub/api/templates")).status_code == 200
    body = {"template": SAMPLEDB_TEMPLATE, "destination": "scoped.ipynb"}
    refused = await reader.post("/hub/api/templates/instantiate", json=body)
    assert refused.status_code == 403 and "requires any of [repo]" in refused.json()["message"]
    stranger = hub.client(headers={"Authorization": f"token {unrelated}"})
    assert (await stranger.get("/hub/api/templates")).status_code == 403
    assert await stored_notebook(hub, alice.db_role, "scoped.ipynb") is None
