"""The templates part's declaration resolves to what the hub serves and runs."""

from __future__ import annotations

from gilhub.notebook_templates import part
from gilhub.notebook_templates.cli import TemplateApp
from gilhub.notebook_templates.service import Templates, TemplateService, start
from gilhub.parts import PARTS, resolve


def test_the_part_declares_routes_link_command_settings_and_service():
    assert "gilhub.notebook_templates" in PARTS
    patterns = [spec[0] for spec in part.handler_specs()]
    assert patterns == [
        r"/hub/templates/?",
        r"/hub/templates/t/(.+)",
        r"/templates/t/(.+)",
        r"/hub/templates/create",
        r"/hub/api/templates/?",
        r"/hub/api/templates/instantiate",
    ]
    assert (part.nav.title, part.nav.path) == ("Templates", "templates")
    assert resolve(part.subcommands["template"][0]) is TemplateApp
    assert part.configurable_classes() == [Templates]
    assert part.start_hook() is start
    assert part.service_attribute == "notebook_templates"


async def test_the_hub_holds_the_service(hub):
    assert isinstance(hub.app.notebook_templates, TemplateService)
    assert hub.app.notebook_templates.config.prefix == "templates/"
