"""The templates' pages: the list, SampleDB's link, the confirmation and the creation.

``/hub/templates/t/PATH`` (and ``/templates/t/PATH``, SampleDB's documented
shape) is the one place that accepts a cross-site POST, so it changes
nothing: it checks the parameters, signs them into a token
(:mod:`.links`) and sends the browser on to the same address with
``?token=`` as a GET, which needs a login (SameSite=Lax cookies travel on
that top-level GET) and shows the confirmation page. Only the confirmation's
own form, under the hub's usual XSRF check, creates the notebook
(``POST /hub/templates/create``) and sends the user into JupyterLab, through
the server's progress page when it has to start.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from gilhub.handlers.base import BaseHandler, login_required
from gilhub.notebook_templates.api import TemplatesMixin, lab_url, template_errors
from gilhub.notebook_templates.errors import (
    BadParameters,
    TemplateError,
    TemplateNotFound,
    TooLarge,
)
from gilhub.notebook_templates.links import TemplateRequest, read_token, sign_request
from gilhub.notebook_templates.params import parse_params
from gilhub.notebook_templates.service import Template

#: A token travels in URLs (through the login page's ``next=``); beyond this
#: size it would not fit in a request line.
MAX_TOKEN_LENGTH = 24 * 1024
MAX_REFERRER = 2000


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def default_params(template: Template) -> str:
    """The template's parameters and their defaults as JSON, to start the hand-made form."""
    defaults = {p.name: p.default_value for p in template.summary.parameters}
    return json.dumps(defaults, indent=1, ensure_ascii=False)


class TemplatePageHandler(TemplatesMixin, BaseHandler):
    def template_url(self, name: str, /, **query: Any) -> str:
        url = f"{self.hub.hub_prefix}templates/t/{quote(name)}"
        query = {key: value for key, value in query.items() if value}
        return url + ("?" + urlencode(query) if query else "")

    def template_namespace(self) -> dict[str, Any]:
        return {
            **super().template_namespace(),
            "template_url": self.template_url,
            "default_params": default_params,
        }

    async def render_error(self, error: TemplateError) -> None:
        """The error's page; a missing template's page lists those there are."""
        self.set_status(template_errors.status(error))
        templates = []
        if isinstance(error, TemplateNotFound) and self.current_user is not None:
            templates = await self.templates.list_templates()
        await self.render_template(
            "template_error.html",
            status_code=self.get_status(),
            reason=self.error_reason(self.get_status()),
            message=error.message[:1].upper() + error.message[1:] + ".",
            templates=templates,
            missing=isinstance(error, TemplateNotFound),
        )


class TemplatesPageHandler(TemplatePageHandler):
    """``/hub/templates``: every template, its parameters, and a form to use it."""

    @login_required
    async def get(self) -> None:
        templates = await self.templates.list_templates()
        await self.render_template(
            "templates.html", templates=templates, prefix=self.templates.config.prefix
        )


class TemplateLinkHandler(TemplatePageHandler):
    """``/hub/templates/t/PATH`` and ``/templates/t/PATH``: SampleDB's link, GET or POST.

    With ``params`` (form field or query): check and sign them, then redirect
    to ``?token=``. With ``token``: after login, the confirmation page, or
    with ``download=1`` the filled notebook as an attachment.
    """

    def check_xsrf_cookie(self) -> None:
        """A cross-site POST is accepted here: it only signs what it was given."""

    async def get(self, name: str) -> None:
        token = self.get_query_argument("token", None)
        if token is None:
            await self.accept(name, self.get_query_argument("params", None))
        else:
            await self.confirm_or_download(name, token)

    async def post(self, name: str) -> None:
        params = self.get_body_argument("params", None)
        if params is None:
            params = self.get_query_argument("params", None)
        await self.accept(name, params)

    async def accept(self, name: str, params_text: str | None) -> None:
        try:
            params = parse_params(params_text)
            self.templates.repository_path(name)
            referrer = self.request.headers.get("Referer", "")[:MAX_REFERRER]
            token = sign_request(self.hub.secret, TemplateRequest(name, params, referrer))
            if len(token) > MAX_TOKEN_LENGTH:
                raise TooLarge(
                    "the parameters are too large to carry through the login "
                    f"({len(token) // 1024} KiB once signed; at most {MAX_TOKEN_LENGTH // 1024})"
                )
        except TemplateError as error:
            await self.render_error(error)
            return
        download = "1" if _flag(self.get_argument("download", None)) else None
        self.redirect(self.template_url(name, token=token, download=download), status=303)

    @login_required
    async def confirm_or_download(self, name: str, token: str) -> None:
        user = self.current_user
        assert user is not None
        try:
            request = read_token(self.hub.secret, token, self.templates.config.token_max_age)
            if request.template != name:
                raise BadParameters("this template link was made for another template")
            if _flag(self.get_query_argument("download", None)):
                await self.download(request)
                return
            plan = await self.templates.plan(user, request.template, request.params)
        except TemplateError as error:
            await self.render_error(error)
            return
        rows = [
            (key, json.dumps(value, ensure_ascii=False), type(value).__name__)
            for key, value in plan.params.items()
        ]
        await self.render_template(
            "template_confirm.html", plan=plan, rows=rows, token=token, request=request
        )

    async def download(self, request: TemplateRequest) -> None:
        template, filled = await self.templates.fill(
            request.template, request.params, referrer=request.referrer
        )
        file_name = self.templates.destination(template, request.params, None).rsplit("/", 1)[-1]
        ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "_")
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.set_header(
            "Content-Disposition",
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}",
        )
        await self.finish(filled)


class TemplateCreateHandler(TemplatePageHandler):
    """The confirmation page's form (XSRF-protected): create, then open it in JupyterLab."""

    @login_required
    async def post(self) -> None:
        user = self.current_user
        assert user is not None
        token = self.get_body_argument("token", "")
        try:
            request = read_token(self.hub.secret, token, self.templates.config.token_max_age)
            version = self.get_body_argument("version", "")
            instance = await self.templates.instantiate(
                user,
                request.template,
                request.params,
                version=int(version) if version.isdigit() else None,
                on_exists=self.get_body_argument("on_exists", "new"),
                referrer=request.referrer,
            )
        except TemplateError as error:
            await self.render_error(error)
            return
        target = lab_url(self.hub.base_url, user.name, instance.path)
        status = self.hub.servers.status(user.name)
        if status.state != "running":
            await self.hub.servers.start(user)
            target = f"{self.hub.hub_prefix}spawn-pending/{quote(user.name)}?" + urlencode(
                {"next": target}
            )
        self.redirect(target)


_PAGES = r"/hub/templates"

handlers: list[tuple] = [
    (_PAGES + r"/?", TemplatesPageHandler),
    (_PAGES + r"/t/(.+)", TemplateLinkHandler),
    (r"/templates/t/(.+)", TemplateLinkHandler),
    (_PAGES + r"/create", TemplateCreateHandler),
]
