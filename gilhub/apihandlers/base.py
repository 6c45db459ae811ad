"""Base of the REST API handlers: JSON in, JSON out, JSON errors.

Every part's API handlers derive from :class:`APIHandler`: bodies are read with
:meth:`~APIHandler.json_object`, integer arguments with
:meth:`~gilhub.handlers.base.BaseHandler.int_argument` or
:func:`~gilhub.handlers.base.whole_number`, and errors that a client needs
details of are raised as :class:`APIError`.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.web import HTTPError

from gilhub.handlers.base import BaseHandler
from gilhub.web_errors import APIError as APIError  # where the parts import it from


class APIHandler(BaseHandler):
    """Errors come back as ``{"status": code, "message": "..."}``; never a redirect."""

    is_api = True

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def get_json_body(self) -> Any:
        """The request body parsed as JSON (``None`` when empty); 400 when malformed."""
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise HTTPError(400, "Request body is not valid JSON.") from error

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object (``{}`` when empty); 400 for anything else."""
        body = self.get_json_body()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise HTTPError(400, "Request body must be a JSON object.")
        return body

    def write_json(self, model: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(model, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write_json_error(status_code, kwargs.get("exc_info"))


class APINotFoundHandler(APIHandler):
    """Unknown ``/hub/api/…`` paths: a JSON 404 rather than the HTML error page."""

    token_scopes = None

    async def prepare(self) -> None:
        await super().prepare()
        raise HTTPError(404, "No such API endpoint.")
