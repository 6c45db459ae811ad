"""A run's outputs: the HTML report and the RO-Crate of its provenance, zipped with them."""

from __future__ import annotations

import functools
import io
import json
import zipfile

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from gilhub.contents import query as contents
from gilhub.runs.crate import PROCESS_RUN_CRATE
from tests.hub.conftest import RunningHub
from tests.runs.helpers import Person, notebook, person

BIBTEX = "@article{curie1898,\n  author = {Marie Curie},\n  title = {Rayons},\n  year = {1898}\n}\n"


@pytest.fixture(scope="module")
async def people(hub: RunningHub) -> dict[str, Person]:
    hub.app.bibliography.file.path.write_text(BIBTEX, encoding="utf-8")
    return {"alice": await person(hub, "alice"), "bob": await person(hub, "bob")}


@functools.cache
def cited_notebook() -> bytes:
    nb = nbformat.reads(notebook("print(f'result {x * 2}')", parameters="x = 1").decode(), 4)
    nb.cells.insert(
        0, new_markdown_cell("Energy $E = mc^2$ as in [@curie1898].\n<script>bad()</script>")
    )
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
async def finished_run(people) -> dict:
    run = await people["alice"].run("cited.ipynb", cited_notebook(), parameters={"x": 21})
    assert run["status"] == "completed", run["error"]
    return run


async def test_the_report_is_sanitised_html_with_citations_and_hub_mathjax(people, finished_run):
    alice = people["alice"]
    report = await alice.api.get(f"/hub/api/runs/{finished_run['id']}/report")
    assert report.status_code == 200, report.text
    assert report.headers["content-type"].startswith("text/html")
    policy = report.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    html = report.text
    assert "result 42" in html
    assert 'href="/hub/bib#curie1898"' in html and "References" in html
    assert "/hub/repo/mathjax/MathJax.js" in html
    assert "<script>bad()" not in html


async def test_the_crate_describes_the_run_and_carries_its_files(people, finished_run):
    alice = people["alice"]
    response = await alice.api.get(f"/hub/api/runs/{finished_run['id']}/crate")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    output_name = "outputs/" + finished_run["output_path"].rsplit("/", 1)[-1]
    assert {"ro-crate-metadata.json", "notebook/cited.ipynb", output_name} < names
    assert "outputs/report.html" in names
    assert archive.read("notebook/cited.ipynb") == cited_notebook()
    graph = {
        item["@id"]: item for item in json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
    }
    root = graph["./"]
    assert root["conformsTo"] == {"@id": PROCESS_RUN_CRATE}
    action = graph[root["mentions"]["@id"]]
    assert action["@type"] == "CreateAction"
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert action["instrument"] == {"@id": "notebook/cited.ipynb"}
    assert {"@id": output_name} in action["result"]
    assert action["startTime"] and action["endTime"]
    assert graph[action["agent"]["@id"]] == {
        "@id": action["agent"]["@id"],
        "@type": "Person",
        "name": "alice",
    }
    (parameter,) = [graph[item["@id"]] for item in action["object"]]
    assert (parameter["name"], json.loads(parameter["value"])) == ("x", 21)
    for item in root["hasPart"]:
        assert item["@id"] in names


async def test_a_failed_runs_crate_says_so_and_keeps_the_partial_output(people):
    alice = people["alice"]
    run = await alice.run("broken.ipynb", notebook("print('before')", "1 / 0"))
    crate = await alice.api.get(f"/hub/api/runs/{run['id']}/crate")
    graph = json.loads(zipfile.ZipFile(io.BytesIO(crate.content)).read("ro-crate-metadata.json"))[
        "@graph"
    ]
    (action,) = [item for item in graph if item["@type"] == "CreateAction"]
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert "ZeroDivisionError" in action["error"]
    assert action["result"]


async def test_a_run_whose_output_was_deleted_has_no_report_but_a_crate(people, hub):
    alice = people["alice"]
    run = await alice.run("fleeting.ipynb", notebook("1"))
    async with hub.app.db.begin() as conn:
        await contents.delete_tree(conn, alice.role, run["output_path"])
    report = await alice.api.get(f"/hub/api/runs/{run['id']}/report")
    assert report.status_code == 404 and "no output" in report.json()["message"]
    crate = await alice.api.get(f"/hub/api/runs/{run['id']}/crate")
    assert crate.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(crate.content)).namelist()
    assert names == ["ro-crate-metadata.json", "notebook/fleeting.ipynb"]


@pytest.mark.parametrize("what", ["report", "crate"])
async def test_another_user_gets_404_for_the_report_and_crate(people, finished_run, what):
    bob = people["bob"]
    response = await bob.api.get(f"/hub/api/runs/{finished_run['id']}/{what}")
    assert response.status_code == 404
    assert "result 42" not in response.text


async def test_the_run_page_links_its_report_and_crate(people, finished_run, hub):
    web = await hub.login("alice", "a-good-password")
    page = (await web.get(f"/hub/runs/{finished_run['id']}")).text
    assert f"/hub/api/runs/{finished_run['id']}/report" in page
    assert f"/hub/api/runs/{finished_run['id']}/crate" in page
