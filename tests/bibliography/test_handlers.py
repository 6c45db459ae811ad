"""The bibliography's pages and API on a real running hub, with the real example file."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from nbconvert import HTMLExporter
from nbformat.v4 import new_markdown_cell, new_notebook
from sqlalchemy.engine import URL

from gilhub.bibliography.library import parse_bibliography
from gilhub.bibliography.preprocessor import hub_citation_preprocessor
from tests.hub.conftest import ADMIN_NAME, RunningHub, post_form, running_hub

from .conftest import EXAMPLE_BIB, hub_with_bibliography


@pytest.fixture(scope="module")
def bib_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab.bib"
    shutil.copyfile(EXAMPLE_BIB, path)
    return path


@pytest.fixture(scope="module")
async def bib_hub(
    database_url: URL, tmp_path_factory: pytest.TempPathFactory, bib_file: Path
) -> AsyncIterator[RunningHub]:
    data_dir = tmp_path_factory.mktemp("hub-data")
    async with hub_with_bibliography(database_url, data_dir, bib_file) as running:
        yield running


@pytest.fixture(scope="module")
async def browser(bib_hub: RunningHub) -> httpx.AsyncClient:
    """A logged-in person (cookie session, so forms need the XSRF token)."""
    await bib_hub.add_user("carol", "carol-password-1")
    return await bib_hub.login("carol", "carol-password-1")


async def test_page_lists_formatted_entries_with_anchors_and_problems(bib_hub, browser):
    response = await browser.get("/hub/bib", params={"per_page": "200"})
    assert response.status_code == 200
    page = response.text
    assert 'id="einstein1905electrodynamics"' in page
    assert "Zur Elektrodynamik bewegter Körper" in page
    assert "href='https://doi.org/10.1002/andp.19053221004'" in page
    assert "Copy BibTeX" in page
    for kind in ("duplicate-key", "invalid-key", "unknown-type", "parse-error"):
        assert f"bib-problem-{kind}" in page
    text = EXAMPLE_BIB.read_text(encoding="utf-8")
    broken_line = text[: text.index("@article{broken2020unbalanced")].count("\n") + 1
    assert f"<td>{broken_line}</td>" in page


async def test_filters_sort_and_pages(browser):
    response = await browser.get("/hub/bib", params={"author": "dijkstra", "sort": "year"})
    page = response.text
    assert "2 matches" in page
    assert page.index('id="dijkstra1959note"') < page.index('id="dijkstra1968goto"')
    response = await browser.get("/hub/bib", params={"type": "phdthesis"})
    assert (
        'id="nash1950noncooperative"' in response.text
        and 'id="higgs1964broken"' not in response.text
    )
    response = await browser.get("/hub/bib", params={"per_page": "10", "page": "2"})
    assert "page 2 of" in response.text
    bad = await browser.get("/hub/bib", params={"year": "last century"})
    assert bad.status_code == 400


async def test_around_redirects_to_the_page_holding_the_key(browser):
    response = await browser.get(
        "/hub/bib", params={"around": "virtanen2020scipy", "per_page": "10"}
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.endswith("#virtanen2020scipy")
    landing = await browser.get(location.split("#")[0])
    assert 'id="virtanen2020scipy"' in landing.text


async def test_entry_page_and_unknown_key(browser):
    response = await browser.get("/hub/bib/higgs1964broken")
    assert response.status_code == 200
    assert "Broken Symmetries and the Masses of Gauge Bosons" in response.text
    assert "@article{higgs1964broken," in response.text
    missing = await browser.get("/hub/bib/no-such-key")
    assert missing.status_code == 404


async def test_api_search_entry_and_tooltip(bib_hub, browser):
    token = await bib_hub.token_for("carol")
    api = bib_hub.client(headers={"Authorization": f"token {token}"})
    found = (await api.get("/hub/api/bib", params={"q": "higgs boson"})).json()
    assert {entry["key"] for entry in found["entries"]} >= {"atlas2012higgs", "cms2012higgs"}
    assert found["problems"] and all("line" in problem for problem in found["problems"])
    entry = (await api.get("/hub/api/bib/cooley1965fft")).json()
    assert entry["label"] == "Cooley and Tukey 1965" and entry["fields"]["year"] == "1965"
    tooltip = await api.get("/hub/api/bib/cooley1965fft", params={"format": "html"})
    assert tooltip.headers["content-type"].startswith("text/html")
    assert "An Algorithm for the Machine Calculation of Complex Fourier Series" in tooltip.text
    missing = await api.get("/hub/api/bib/nothing-here")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    every_key = (await api.get("/hub/api/bib", params={"only": "keys"})).json()["keys"]
    assert "higgs1964broken" in every_key and len(every_key) >= 50
    anonymous = await bib_hub.client().get("/hub/api/bib")
    assert anonymous.status_code == 403


async def test_download_whole_file_and_selection(bib_file, browser):
    whole = await browser.get("/hub/bib.bib")
    assert whole.status_code == 200 and "attachment" in whole.headers["content-disposition"]
    assert whole.text == bib_file.read_text(encoding="utf-8")
    selection = await browser.get(
        "/hub/bib.bib", params={"keys": "mckinney2010pandas,higgs1964broken"}
    )
    parsed = parse_bibliography(selection.content)
    assert list(parsed.entries) == ["mckinney2010pandas", "higgs1964broken"]
    assert parsed.entries["higgs1964broken"].fields["journal"] == "Physical Review Letters"
    filtered = parse_bibliography(
        (await browser.get("/hub/bib.bib", params={"author": "dijkstra"})).content
    )
    assert set(filtered.entries) == {"dijkstra1959note", "dijkstra1968goto"}


async def test_forms_need_the_xsrf_token(bib_hub, browser, bib_file):
    before = bib_file.read_bytes()
    response = await browser.post(
        "/hub/bib-add", data={"mode": "paste", "bibtex": "@misc{x1, title={X}}"}
    )
    assert response.status_code == 403
    assert bib_file.read_bytes() == before


async def test_add_by_form_paste_and_upload(bib_hub, browser, bib_file):
    xsrf = bib_hub.xsrf_token(browser)
    added = await post_form(
        browser,
        "/hub/bib-add",
        {
            "_xsrf": xsrf,
            "mode": "form",
            "entry_type": "article",
            "key": "bohr1913constitution",
            "author": "Bohr, Niels",
            "title": "On the Constitution of Atoms and Molecules",
            "journal": "Philosophical Magazine",
            "year": "1913",
        },
    )
    assert added.status_code == 200 and "Added:" in added.text
    assert "Added:" not in (await browser.get(str(added.url))).text  # shown once
    bad = await browser.post(
        "/hub/bib-add",
        data={"_xsrf": xsrf, "mode": "form", "entry_type": "article", "key": "a {b}"},
    )
    assert bad.status_code == 400 and "Nothing was written" in bad.text

    pasted = await post_form(
        browser,
        "/hub/bib-add",
        {
            "_xsrf": xsrf,
            "mode": "paste",
            "bibtex": "@misc{evil2024, title={<script>alert(1)</script>},"
            " url={javascript:alert(1)}}",
        },
    )
    assert pasted.status_code == 200
    entry_page = await browser.get("/hub/bib/evil2024")
    assert "<script>alert(1)</script>" not in entry_page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in entry_page.text
    assert 'href="javascript' not in entry_page.text and "href='javascript" not in entry_page.text

    upload = (
        b"@article{higgs1964broken, title={Different}, year={1964}}\n@misc{uploaded1, title={U}}\n"
    )
    merged = await browser.post(
        "/hub/bib-add",
        data={"_xsrf": xsrf, "mode": "upload"},
        files={"bibfile": ("mine.bib", upload, "application/x-bibtex")},
    )
    assert merged.status_code == 409
    assert "These keys are already taken" in merged.text and "uploaded1" in merged.text
    text = bib_file.read_text(encoding="utf-8")
    assert "@misc{uploaded1" in text and "title={Different}" not in text
    changes = (await browser.get("/hub/bib")).text
    assert "carol added" in changes


async def test_api_add_and_concurrent_adds(bib_hub, bib_file):
    token = await bib_hub.token_for(ADMIN_NAME)
    api = bib_hub.client(headers={"Authorization": f"token {token}"})
    results = await asyncio.gather(
        *[
            api.post("/hub/api/bib", json={"bibtex": f"@misc{{api{i}, title={{T{i}}}}}"})
            for i in range(10)
        ]
    )
    assert [r.status_code for r in results] == [201] * 10
    keys = set(parse_bibliography(bib_file.read_bytes()).entries)
    assert {f"api{i}" for i in range(10)} <= keys
    conflict = await api.post("/hub/api/bib", json={"bibtex": "@misc{api1, title={Other}}"})
    assert conflict.status_code == 409 and conflict.json()["duplicates"][0]["key"] == "api1"
    broken = await api.post("/hub/api/bib", json={"bibtex": "@misc{x, title={unbalanced}"})
    assert broken.status_code == 400 and "could not be parsed" in broken.json()["message"]


async def test_hand_edit_is_picked_up_without_restart(browser, bib_file):
    with bib_file.open("a", encoding="utf-8") as stream:
        stream.write("\n@misc{byhand2026, title={Written in an editor}}\n")
    response = await browser.get("/hub/bib/byhand2026")
    assert response.status_code == 200 and "Written in an editor" in response.text


async def test_the_hubs_renderers_link_citations_to_its_bibliography(bib_hub):
    nb = new_notebook(cells=[new_markdown_cell("Fourier [@cooley1965fft] and [@nosuch2030].")])
    preprocessor = await asyncio.to_thread(hub_citation_preprocessor, bib_hub.app)
    exporter = HTMLExporter()
    exporter.register_preprocessor(preprocessor, enabled=True)
    body, _ = await asyncio.to_thread(exporter.from_notebook_node, nb)
    assert "href='/hub/bib#cooley1965fft'" in body or 'href="/hub/bib#cooley1965fft"' in body
    assert "References" in body and "nosuch2030 — not in the bibliography" in body


async def test_keys_with_url_characters_have_pages_and_json(bib_hub, browser):
    token = await bib_hub.token_for("carol")
    api = bib_hub.client(headers={"Authorization": f"token {token}"})
    added = await api.post("/hub/api/bib", json={"bibtex": "@misc{doe/2020:a+b, title={Slash}}"})
    assert added.status_code == 201, added.text
    quoted = quote("doe/2020:a+b", safe="")
    page = await browser.get(f"/hub/bib/{quoted}")
    assert page.status_code == 200 and "Slash" in page.text
    assert (await api.get(f"/hub/api/bib/{quoted}")).json()["key"] == "doe/2020:a+b"


async def test_type_filter_offers_only_types_bibtex_knows(browser):
    page = (await browser.get("/hub/bib")).text
    type_filter = page[page.index('<select name="type">') : page.index("</select>")]
    assert '<option value="article"' in type_filter
    assert "webpage" not in type_filter  # @webpage is listed among the file's problems


async def test_add_form_shows_the_fields_of_the_chosen_type_with_required_ones_marked(browser):
    page = (await browser.get("/hub/bib-add", params={"mode": "form"})).text

    def field(name: str) -> tuple[str, str]:
        """The label's opening tag and its input."""
        start = page.index(f'<label data-field="{name}"')
        label = page[start : page.index("</label>", start)]
        return label[: label.index(">")], label[label.index("<input") :]

    def shown(name: str) -> bool:
        return "hidden" not in field(name)[0]

    def required(name: str) -> bool:
        return "required" in field(name)[1]

    # the first type (article): journal required, volume optional, school not a field of it
    assert shown("journal") and required("journal")
    assert shown("volume") and not required("volume")
    assert not shown("school")
    assert "data-type-fields" in page and "js/bib_add.js" in page


async def test_add_form_marks_alternatives_for_a_book(browser):
    response = await browser.post(
        "/hub/bib-add",
        data={"mode": "form", "entry_type": "book", "key": "k1", "_xsrf": browser.cookies["_xsrf"]},
    )
    page = response.text
    author = page[page.index('<label data-field="author"') :]
    assert "(author or editor: one required)" in author[: author.index("</label>")]
    assert "publisher: required for @book" in page


async def test_a_fresh_hub_starts_with_an_empty_bibliography_and_says_how_to_fill_it(
    database_url: URL, tmp_path: Path
) -> None:
    data_dir = tmp_path / "fresh"
    async with running_hub(database_url, data_dir) as fresh:
        assert (data_dir / "bibliography.bib").read_bytes() == b""  # made at the first start
        client = await fresh.login(fresh.admin_name, fresh.admin_password)
        page = (await client.get("/hub/bib")).text
    assert 'id="bib-empty-state"' in page
    assert "/hub/bib-add" in page and "c.LabBibliography.path" in page
    for greeting in ("does not exist", "No entries match", "Line 0"):
        assert greeting not in page
    (data_dir / "bibliography.bib").write_text("@misc{kept, title = {Mine}}\n")
    async with running_hub(database_url, data_dir):  # a later start leaves the file alone
        assert "kept" in (data_dir / "bibliography.bib").read_text()
