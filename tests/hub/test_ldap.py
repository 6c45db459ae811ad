"""Logging in with a directory: a real OpenLDAP slapd, the real hub and its login form."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from traitlets.config import Config

from gilhub.auth.ldap import DIRECTORY_DOWN, LDAPAuthenticator
from gilhub.users import get_password_hash, get_user_by_name
from tests.hub.conftest import RunningHub, running_hub
from tests.hub.ldap_server import (
    PEOPLE,
    SCIENTISTS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    free_port,
    start_slapd,
)
from tests.hub.test_auth import login_form


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def ldap_hub(
    slapd: Slapd, database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    config = Config()
    config.GilHub.authenticator_class = LDAPAuthenticator
    config.LDAPAuthenticator.server_addresses = [slapd.url]
    config.LDAPAuthenticator.bind_dn_template = f"uid={{username}},{PEOPLE}"
    config.LDAPAuthenticator.allowed_groups = [SCIENTISTS]
    config.LDAPAuthenticator.timeout = 5.0
    async with running_hub(database_url, tmp_path_factory.mktemp("ldap-hub"), config) as hub:
        yield hub


@contextlib.contextmanager
def authenticator_settings(hub: RunningHub, **settings) -> Iterator[None]:
    authenticator = hub.app.authenticator
    saved = {name: getattr(authenticator, name) for name in settings}
    authenticator.update_config(Config({"LDAPAuthenticator": settings}))
    try:
        yield
    finally:
        authenticator.update_config(Config({"LDAPAuthenticator": saved}))


async def test_ldap_login_creates_the_user_and_lands_on_the_home_page(ldap_hub: RunningHub):
    client = ldap_hub.client()
    response = await login_form(client, ldap_hub, "Ada", "ada-directory-pw")
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/hub/home"
    home = await client.get("/hub/home")
    assert home.status_code == 200 and "ada" in home.text
    async with ldap_hub.app.db.connect() as conn:
        user = await get_user_by_name(conn, "ada")
        assert user is not None and user.db_role and not user.is_admin
        assert await get_password_hash(conn, "ada") is None  # the directory keeps the password
    page = await client.get("/hub/change-password")
    assert "kept by your lab's directory" in page.text and "new_password" not in page.text


async def test_wrong_directory_password_is_refused(ldap_hub: RunningHub) -> None:
    response = await login_form(ldap_hub.client(), ldap_hub, "grace", "not-her-password")
    assert response.status_code == 403
    assert "Invalid username or password." in response.text


async def test_empty_password_is_never_an_anonymous_bind(ldap_hub: RunningHub) -> None:
    response = await login_form(ldap_hub.client(), ldap_hub, "grace", "")
    assert response.status_code == 403


async def test_a_person_outside_the_allowed_groups_is_refused(ldap_hub: RunningHub) -> None:
    response = await login_form(ldap_hub.client(), ldap_hub, "bert", "bert-directory-pw")
    assert response.status_code == 403
    async with ldap_hub.app.db.connect() as conn:
        assert await get_user_by_name(conn, "bert") is None


async def test_allowed_users_and_admin_users_apply_to_directory_logins(
    ldap_hub: RunningHub,
) -> None:
    with authenticator_settings(ldap_hub, allowed_users={"grace"}, admin_users={"grace"}):
        outside = await login_form(ldap_hub.client(), ldap_hub, "ada", "ada-directory-pw")
        grace = await login_form(ldap_hub.client(), ldap_hub, "grace", "grace-directory-pw")
    assert outside.status_code == 403
    assert grace.status_code == 303
    async with ldap_hub.app.db.connect() as conn:
        assert (await get_user_by_name(conn, "grace")).is_admin


async def test_search_then_bind_with_a_service_account(ldap_hub: RunningHub) -> None:
    with authenticator_settings(
        ldap_hub,
        bind_dn_template="",
        search_bind_dn=SERVICE_DN,
        search_bind_password=SERVICE_PASSWORD,
        user_search_base=PEOPLE,
    ):
        good = await login_form(ldap_hub.client(), ldap_hub, "grace", "grace-directory-pw")
        outsider = await login_form(ldap_hub.client(), ldap_hub, "bert", "bert-directory-pw")
    assert good.status_code == 303
    assert outsider.status_code == 403


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
async def test_tls_to_the_directory_verifies_its_certificate(
    ldap_hub: RunningHub, slapd: Slapd, tls: str
) -> None:
    address = slapd.ldaps_url if tls == "ldaps" else slapd.url
    settings = {"server_addresses": [address], "start_tls": tls == "starttls"}
    with authenticator_settings(ldap_hub, **settings, ca_file=str(slapd.ca_file)):
        trusted = await login_form(ldap_hub.client(), ldap_hub, "ada", "ada-directory-pw")
    with authenticator_settings(ldap_hub, **settings, ca_file=""):  # the system's CAs only
        untrusted = await login_form(ldap_hub.client(), ldap_hub, "ada", "ada-directory-pw")
    assert trusted.status_code == 303
    assert untrusted.status_code == 503  # never a login over an unverified connection


async def test_directory_down_is_said_and_the_local_admin_still_logs_in(
    ldap_hub: RunningHub,
) -> None:
    with authenticator_settings(ldap_hub, server_addresses=[f"ldap://127.0.0.1:{free_port()}"]):
        down = await login_form(ldap_hub.client(), ldap_hub, "ada", "ada-directory-pw")
        admin = await login_form(
            ldap_hub.client(), ldap_hub, ldap_hub.admin_name, ldap_hub.admin_password
        )
    assert down.status_code == 503
    assert DIRECTORY_DOWN in down.text
    assert admin.status_code == 303


async def test_authenticators_are_found_by_short_name(tmp_path: Path) -> None:
    """A package registers an authenticator in the entry-point group gilhub.authenticators."""
    import sys

    from gilhub.app import GilHub

    dist_info = tmp_path / "example_auth-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Name: example-auth\nVersion: 1.0\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(
        "[gilhub.authenticators]\ndirectory = gilhub.auth.ldap:LDAPAuthenticator\n",
        encoding="utf-8",
    )
    sys.path.insert(0, str(tmp_path))
    try:
        config = Config()
        config.GilHub.authenticator_class = "directory"
        assert GilHub(config=config).authenticator_class is LDAPAuthenticator
    finally:
        sys.path.remove(str(tmp_path))


def test_pyproject_registers_the_password_and_ldap_authenticators() -> None:
    import importlib

    import tomllib

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    registered = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["entry-points"]
    for name, target in registered["gilhub.authenticators"].items():
        module, _, attribute = target.partition(":")
        assert hasattr(importlib.import_module(module), attribute), name
    assert set(registered["gilhub.authenticators"]) >= {"password", "ldap"}
