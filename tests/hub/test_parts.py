"""Parts register themselves: the hub serves, links, documents and starts what they declare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Application

from gilhub import parts
from gilhub.parts import load_parts
from gilhub.resources import sql_dir
from tests.hub.conftest import running_hub

GILHUB = [sys.executable, "-c", "from gilhub.app import main; main()"]


def gilhub_output(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [*GILHUB, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def every_configurable() -> list[str]:
    return [cls.__name__ for part in load_parts() for cls in part.configurable_classes()]


@pytest.mark.parametrize("part", load_parts(), ids=lambda part: part.name)
def test_every_part_declares_routes_nav_commands_and_configurables(part: parts.Part) -> None:
    assert part.handler_specs(), f"{part.name} serves nothing"
    assert part.nav is not None and part.nav.title and part.nav.path
    for name, (dotted, help_text) in part.subcommands.items():
        assert issubclass(parts.resolve(dotted), Application) and help_text, name
    assert part.configurable_classes()
    for migration in part.migrations:
        assert (sql_dir() / migration).is_file(), migration
    if part.start:
        assert part.start_hook() is not None and part.service_attribute


def test_help_all_lists_every_parts_configurable_classes(tmp_path: Path) -> None:
    output = gilhub_output("--help-all", cwd=tmp_path)
    assert "RepositoryConfig" in every_configurable()
    for name in ["GilHub", *every_configurable()]:
        assert f"--{name}." in output, f"{name} is missing from gilhub --help-all"


def test_generate_config_lists_every_parts_configurable_classes(tmp_path: Path) -> None:
    gilhub_output("--generate-config", cwd=tmp_path)
    written = (tmp_path / "gilhub_config.py").read_text(encoding="utf-8")
    for name in ["GilHub", *every_configurable()]:
        assert f"# c.{name}." in written, f"{name} is missing from the generated config"


async def test_a_new_part_is_served_linked_and_started(
    database_url, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parts, "PARTS", (*parts.PARTS, "tests.hub.example_part"))
    async with running_hub(database_url, tmp_path / "data") as hub:
        assert hub.app.greeter is not None  # built once, at start
        await hub.add_user("erin")
        client = await hub.login("erin", "a-good-password")
        page = await client.get("/hub/example")
        assert page.status_code == 200
        assert page.text == "Hello erin, from the example part under /hub/"
        home = await client.get("/hub/home")
        assert '<a href="/hub/example">Example</a>' in home.text
        assert '<a href="/hub/repo">Repository</a>' in home.text
        anonymous = hub.client(follow_redirects=False)
        assert (await anonymous.get("/hub/example")).status_code == 302
    assert hub.app.greeter is None  # released at stop
