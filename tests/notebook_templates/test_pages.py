"""SampleDB's link (``/templates/t/PATH``), the confirmation, the list: the pages over real HTTP."""

from __future__ import annotations

import json
import re
import secrets
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import nbformat
import pytest

from gilhub.notebook_templates.links import TemplateRequest, sign_request
from gilhub.notebook_templates.params import MAX_PARAMS_BYTES
from tests.hub.conftest import USER_PASSWORD, RunningHub
from tests.notebook_templates.helpers import (
    NAMED_TEMPLATE,
    SAMPLEDB_TEMPLATE,
    push_template,
    run_injected,
    stored_notebook,
    template_bytes,
)

SAMPLEDB = "https://sampledb.example.org"
MEASUREMENT = {"measurement_name": "Experiment-12345", "created": "2026-11-02 10:00:00"}


@pytest.fixture(scope="module")
async def templates(hub: RunningHub) -> None:
    await push_template(hub, SAMPLEDB_TEMPLATE)
    await push_template(hub, NAMED_TEMPLATE)


@pytest.fixture
async def person(hub: RunningHub, templates):
    """A new user and a browser-like client of theirs (logged in)."""
    user = await hub.add_user(hub.unique_name("sam"))
    web = await hub.login(user.name, USER_PASSWORD)
    try:
        yield user, web
    finally:
        await hub.app.servers.stop(user)


def sampledb_post(client: httpx.AsyncClient, path: str, params: str) -> httpx.Request:
    """SampleDB's cross-site form: no XSRF token, no hub cookie (SameSite=Lax keeps it home)."""
    return client.post(
        "/templates/t/" + path,
        data={"params": params},
        headers={"Origin": SAMPLEDB, "Referer": SAMPLEDB + "/objects/42"},
    )


def page_text(response: httpx.Response) -> str:
    """The page's words as a person reads them (tags gone, spaces collapsed)."""
    text = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)))
    return re.sub(r" ([,.:])", r"\1", text)


def hidden(response: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', response.text)
    assert match, f"no {name} field in the page"
    return unescape(match.group(1))


async def test_sampledb_post_logs_in_confirms_creates_and_opens_jupyterlab(hub, person):
    user, _ = person
    browser = hub.client()
    posted = await sampledb_post(browser, SAMPLEDB_TEMPLATE, json.dumps(MEASUREMENT))
    assert posted.status_code == 303, posted.text
    link = posted.headers["Location"]
    assert link.startswith(f"/hub/templates/t/{SAMPLEDB_TEMPLATE}?token=")

    to_login = await browser.get(link)
    assert to_login.status_code == 302
    login_url = to_login.headers["Location"]
    assert login_url.startswith("/hub/login?next=")
    await browser.get(login_url)
    logged_in = await browser.post(
        login_url,
        data={"username": user.name, "password": USER_PASSWORD, "_xsrf": hub.xsrf_token(browser)},
    )
    assert logged_in.status_code == 303 and logged_in.headers["Location"] == link

    confirm = await browser.get(link)
    assert confirm.status_code == 200, confirm.text
    text = page_text(confirm)
    assert f"Template {SAMPLEDB_TEMPLATE}, version 1: Data analysis" in text
    assert 'measurement_name "Experiment-12345" str' in text
    assert 'created "2026-11-02 10:00:00" str' in text
    assert "It will be created as data_analysis.ipynb in your storage" in text
    assert f"Requested from {SAMPLEDB}" in text
    assert "Download it instead (nothing is stored)" in text

    form = {"token": hidden(confirm, "token"), "version": hidden(confirm, "version")}
    refused = await browser.post("/hub/templates/create", data={**form, "on_exists": "new"})
    assert refused.status_code == 403  # the confirmation is XSRF-protected
    assert await stored_notebook(hub, user.db_role, "data_analysis.ipynb") is None

    xsrf = {"_xsrf": hub.xsrf_token(browser)}
    created = await browser.post("/hub/templates/create", data={**form, **xsrf, "on_exists": "new"})
    assert created.status_code == 303, created.text
    target = urlsplit(created.headers["Location"])
    assert target.path == f"/hub/spawn-pending/{user.name}"
    lab = f"/user/{user.name}/lab/tree/data_analysis.ipynb"
    assert parse_qs(target.query)["next"] == [lab]
    notebook = await stored_notebook(hub, user.db_role, "data_analysis.ipynb")
    assert run_injected(notebook) == MEASUREMENT
    record = notebook.metadata["gilhub"]["template"]
    assert record["referrer"] == SAMPLEDB + "/objects/42"
    assert record["params"] == MEASUREMENT

    again = await browser.get(link)
    text = page_text(again)
    assert "You already have data_analysis.ipynb" in text
    assert "Create data_analysis-1.ipynb" in text and "Open my existing data_analysis.ipynb" in text
    opened = await browser.post("/hub/templates/create", data={**form, **xsrf, "on_exists": "open"})
    assert opened.status_code == 303
    assert parse_qs(urlsplit(opened.headers["Location"]).query)["next"] == [lab]
    second = await browser.post("/hub/templates/create", data={**form, **xsrf, "on_exists": "new"})
    assert second.status_code == 303
    assert await stored_notebook(hub, user.db_role, "data_analysis-1.ipynb") is not None
    assert run_injected(await stored_notebook(hub, user.db_role, "data_analysis.ipynb")) == (
        MEASUREMENT
    )


async def test_get_with_params_and_placeholders_fill_the_name(hub, person):
    _, web = person
    link = await web.get(
        f"/templates/t/{NAMED_TEMPLATE}", params={"params": json.dumps(MEASUREMENT)}
    )
    assert link.status_code == 303
    confirm = await web.get(link.headers["Location"])
    assert "created as Data_Analysis_Experiment-12345.ipynb" in page_text(confirm)


async def test_the_version_confirmed_is_the_version_created(hub, person):
    user, web = person
    name = "versioned/analysis.ipynb"
    await push_template(hub, name)
    link = await web.post(f"/hub/templates/t/{name}", data={"params": "{}"})
    confirm = await web.get(link.headers["Location"])
    await push_template(hub, name, template_bytes("Data analysis, second version"))
    form = {"token": hidden(confirm, "token"), "version": hidden(confirm, "version")}
    await web.post("/hub/templates/create", data={**form, "_xsrf": hub.xsrf_token(web)})
    notebook = await stored_notebook(hub, user.db_role, "analysis.ipynb")
    assert notebook.metadata["gilhub"]["template"]["version"] == 1


async def test_download_returns_the_filled_notebook_without_storing_it(hub, person):
    user, web = person
    link = await web.post(
        f"/templates/t/{NAMED_TEMPLATE}?download=1", data={"params": json.dumps(MEASUREMENT)}
    )
    assert link.status_code == 303 and "download=1" in link.headers["Location"]
    download = await web.get(link.headers["Location"])
    assert download.status_code == 200, download.text
    assert download.headers["Content-Disposition"].startswith(
        'attachment; filename="Data_Analysis_Experiment-12345.ipynb"'
    )
    assert run_injected(nbformat.reads(download.text, as_version=4)) == MEASUREMENT
    assert await stored_notebook(hub, user.db_role, "Data_Analysis_Experiment-12345.ipynb") is None


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ("{not json", 400, "The parameters are not valid JSON"),
        ("[1, 2]", 400, "must be a JSON object of names and values, not a list"),
        ('"text"', 400, "not a string"),
        ('{"a": NaN}', 400, "not valid JSON"),
        ('{"not a name": 1}', 400, "'not a name' is not an identifier"),
    ],
)
async def test_bad_params_get_a_clear_page_before_any_login(
    hub, templates, params, status, message
):
    response = await sampledb_post(hub.client(), SAMPLEDB_TEMPLATE, params)
    assert response.status_code == status, response.text
    assert "text/html" in response.headers["Content-Type"]
    assert message in page_text(response)


async def test_params_over_64_kib_get_413(hub, person):
    too_large = '{"x": "' + "y" * MAX_PARAMS_BYTES + '"}'
    # before login the hub's request gate refuses any body over 64 KiB, unread
    anonymous = await sampledb_post(hub.client(), SAMPLEDB_TEMPLATE, too_large)
    assert anonymous.status_code == 413
    # a logged-in browser's form gets the templates' own page
    _, web = person
    page = await web.post(f"/hub/templates/t/{SAMPLEDB_TEMPLATE}", data={"params": too_large})
    assert page.status_code == 413 and "larger than 64 KiB" in page_text(page)


async def test_a_path_with_dotdot_is_refused(hub, templates):
    response = await hub.client().post(
        "/templates/t/some_instrument/%2E%2E/%2E%2E/secret.ipynb", data={"params": "{}"}
    )
    assert response.status_code == 400, response.text
    assert "'..'" in page_text(response)


async def test_a_missing_template_lists_the_templates(hub, person):
    _, web = person
    link = await web.post("/templates/t/other_instrument/nothing.ipynb", data={"params": "{}"})
    missing = await web.get(link.headers["Location"])
    assert missing.status_code == 404
    text = page_text(missing)
    assert "There is no template 'other_instrument/nothing.ipynb'" in text
    assert SAMPLEDB_TEMPLATE in text and NAMED_TEMPLATE in text


async def test_a_missing_placeholder_value_is_named(hub, person):
    _, web = person
    link = await web.post(f"/templates/t/{NAMED_TEMPLATE}", data={"params": '{"created": "x"}'})
    page = await web.get(link.headers["Location"])
    assert page.status_code == 400
    assert "The parameter 'measurement_name' is missing" in page_text(page)


async def test_expired_tampered_and_misdirected_tokens_are_refused(hub, person):
    user, web = person
    request = TemplateRequest(SAMPLEDB_TEMPLATE, {"a": 1})
    old = sign_request(hub.app.secret, request, clock=lambda: time.time() - 2 * 3600)
    expired = await web.get(f"/hub/templates/t/{SAMPLEDB_TEMPLATE}", params={"token": old})
    assert expired.status_code == 400 and "has expired" in page_text(expired)

    good = sign_request(hub.app.secret, request)
    tampered = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    damaged = await web.get(f"/hub/templates/t/{SAMPLEDB_TEMPLATE}", params={"token": tampered})
    assert damaged.status_code == 400 and "damaged" in page_text(damaged)
    forged = sign_request(b"not the hub's secret", request)
    refused = await web.get(f"/hub/templates/t/{SAMPLEDB_TEMPLATE}", params={"token": forged})
    assert refused.status_code == 400 and "damaged" in page_text(refused)

    other = await web.get(f"/hub/templates/t/{NAMED_TEMPLATE}", params={"token": good})
    assert other.status_code == 400 and "another template" in page_text(other)

    xsrf = {"_xsrf": hub.xsrf_token(web)}
    create = await web.post("/hub/templates/create", data={"token": tampered, **xsrf})
    assert create.status_code == 400 and "damaged" in page_text(create)
    assert await stored_notebook(hub, user.db_role, "data_analysis.ipynb") is None


async def test_list_page_shows_templates_with_their_parameters_and_a_form(hub, person):
    _, web = person
    page = await web.get("/hub/templates")
    assert page.status_code == 200
    text = page_text(page)
    assert "Data analysis" in text and "Analyses one measurement from SampleDB." in text
    assert 'measurement_name str "unknown" the measurement in SampleDB' in text
    assert f'action="/hub/templates/t/{SAMPLEDB_TEMPLATE}"' in page.text
    assert '"threshold": 0.5' in unescape(page.text)
    assert (await hub.client().get("/hub/templates")).status_code == 302  # login first


async def test_large_params_travel_through_login_or_are_refused_clearly(hub, templates):
    browser = hub.client()
    user = await hub.add_user(hub.unique_name("big"))
    rows = {"rows": [{"sample": f"S-{i}", "ok": True} for i in range(700)]}
    assert len(json.dumps(rows)) > 20_000  # and within the 64 KiB a logged-out form may send
    posted = await sampledb_post(browser, SAMPLEDB_TEMPLATE, json.dumps(rows))
    assert posted.status_code == 303
    to_login = await browser.get(posted.headers["Location"])
    login_url = to_login.headers["Location"]
    await browser.get(login_url)
    logged_in = await browser.post(
        login_url,
        data={"username": user.name, "password": USER_PASSWORD, "_xsrf": hub.xsrf_token(browser)},
    )
    confirm = await browser.get(logged_in.headers["Location"])
    assert confirm.status_code == 200 and "S-699" in page_text(confirm)

    noise = {"blob": secrets.token_urlsafe(30_000)}  # does not compress
    refused = await sampledb_post(hub.client(), SAMPLEDB_TEMPLATE, json.dumps(noise))
    assert refused.status_code == 413
    assert "too large to carry through the login" in page_text(refused)
