"""A tiny part declared only by the tests: one page, one nav link, one service.

It shows the whole of what a new part needs to be served (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gilhub.handlers.base import BaseHandler, login_required
from gilhub.parts import NavLink, Part

if TYPE_CHECKING:
    from gilhub.app import GilHub


@dataclass(frozen=True)
class Greeter:
    hub_prefix: str

    def greet(self, name: str) -> str:
        return f"Hello {name}, from the example part under {self.hub_prefix}"


async def start(hub: GilHub) -> Greeter:
    return Greeter(hub.hub_prefix)


class GreetingHandler(BaseHandler):
    @login_required
    async def get(self) -> None:
        assert self.current_user is not None
        self.finish(self.hub.greeter.greet(self.current_user.name))


handlers = [(r"/hub/example", GreetingHandler)]

part = Part(
    name="example",
    handlers=("tests.hub.example_part",),
    nav=NavLink("Example", "example"),
    start="tests.hub.example_part.start",
    service_attribute="greeter",
)
