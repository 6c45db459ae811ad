"""The templates' REST API: ``GET /hub/api/templates``, ``POST /hub/api/templates/instantiate``.

Like every hub API it takes a token, or the login cookie plus the XSRF token.
The templates' domain errors get their HTTP status here (and in
:mod:`.pages`), nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tornado.web import HTTPError

from gilhub.apihandlers.base import APIHandler
from gilhub.handlers.base import login_required
from gilhub.notebook_templates import part
from gilhub.notebook_templates.errors import (
    BadTemplate,
    DestinationExists,
    TemplateError,
    TemplateNotFound,
    TooLarge,
)
from gilhub.notebook_templates.params import MAX_PARAMS_BYTES, check_params
from gilhub.web_errors import domain_errors

if TYPE_CHECKING:
    from gilhub.notebook_templates.service import TemplateService

#: Room in an instantiate body for everything besides the parameters.
MAX_BODY_OVERHEAD = 8 * 1024


#: The templates' errors as HTTP errors of these statuses (400 for the others).
template_errors = domain_errors(
    TemplateError, {TooLarge: 413, TemplateNotFound: 404, DestinationExists: 409, BadTemplate: 422}
)


def lab_url(base_url: str, user_name: str, path: str) -> str:
    """Where ``path`` of ``user_name``'s storage opens in JupyterLab."""
    return f"{base_url}user/{quote(user_name)}/lab/tree/{quote(path)}"


class TemplatesMixin:
    hub: Any

    @property
    def templates(self) -> TemplateService:
        assert part.service_attribute is not None
        return getattr(self.hub, part.service_attribute)


class TemplatesAPIHandler(TemplatesMixin, APIHandler):
    """Templates are repository entries, so tokens need ``read:repo`` to list them."""

    token_scopes = ("read:repo", "read:repo")

    @login_required
    @template_errors
    async def get(self) -> None:
        templates = await self.templates.list_templates()
        self.write_json({"templates": [template.as_json() for template in templates]})


class InstantiateAPIHandler(TemplatesMixin, APIHandler):
    """``{"template", "params", "destination"?, "on_exists"?, "version"?}`` -> 201.

    The answer is ``{"path", "url", "created"}``: where the notebook is in the
    user's storage and where it opens in JupyterLab.

    ``on_exists`` is ``"new"`` (default: ``name-1.ipynb`` beside an existing
    file), ``"open"`` (answer the existing file, 200) or ``"fail"`` (409). Like a pull into
    one's storage, it takes a token with the ``repo`` scope.
    """

    token_scopes = ("repo", "repo")

    @login_required
    @template_errors
    async def post(self) -> None:
        if len(self.request.body) > MAX_PARAMS_BYTES + MAX_BODY_OVERHEAD:
            raise TooLarge(f"the request is larger than {MAX_PARAMS_BYTES // 1024} KiB")
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        version, destination = body.get("version"), body.get("destination")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise HTTPError(400, "version must be a whole number.")
        if destination is not None and not isinstance(destination, str):
            raise HTTPError(400, "destination must be a path in your storage.")
        user = self.current_user
        assert user is not None
        instance = await self.templates.instantiate(
            user,
            str(body.get("template") or ""),
            check_params({} if body.get("params") is None else body["params"]),
            version=version,
            destination=destination or None,
            on_exists=str(body.get("on_exists") or "new"),
            referrer=self.request.headers.get("Referer", "")[:2000],
        )
        url = lab_url(self.hub.base_url, user.name, instance.path)
        answer = {"path": instance.path, "url": url, "created": instance.created}
        self.write_json(answer, status=201 if instance.created else 200)


handlers: list[tuple] = [
    (r"/hub/api/templates/?", TemplatesAPIHandler),
    (r"/hub/api/templates/instantiate", InstantiateAPIHandler),
]
