"""A template request carried through login in a signed, expiring token.

SampleDB's form POST comes from another site, without the hub's SameSite
cookie and without our XSRF token, so it may change nothing: the hub only
signs what was asked (template, parameters, referring page) with its cookie
secret and sends the browser on with that token in the URL, through the
login page if needed, to a confirmation page protected as usual. The token is
compressed JSON signed by Tornado's ``create_signed_value`` under a name of
its own, so no other signed value of the hub (a session cookie) is accepted
as one, and :func:`read_token` refuses it once ``max_age`` seconds have passed.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from tornado.web import create_signed_value, decode_signed_value

from gilhub.notebook_templates.errors import BadToken
from gilhub.notebook_templates.params import Params, check_params

TOKEN_NAME = "gilhub-template-request"  # noqa: S105 (a name, not a secret)
#: Tokens whose signature checks out are looked at up to this old, to tell
#: "expired" from "tampered with" (both are refused).
_ANY_AGE_DAYS = 3650.0


@dataclass(frozen=True)
class TemplateRequest:
    template: str  # the template's path below the prefix
    params: Params
    referrer: str = ""


def sign_request(
    secret: bytes, request: TemplateRequest, clock: Callable[[], float] | None = None
) -> str:
    payload = json.dumps(
        {"t": request.template, "p": request.params, "r": request.referrer},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    value = zlib.compress(payload.encode("utf-8"), 9)
    return create_signed_value(secret, TOKEN_NAME, value, clock=clock).decode("ascii")


def read_token(secret: bytes, token: str, max_age: float) -> TemplateRequest:
    """The request signed in ``token``; :class:`BadToken` if altered or older than ``max_age``."""
    if decode_signed_value(secret, TOKEN_NAME, token, max_age_days=_ANY_AGE_DAYS) is None:
        raise BadToken("this template link is damaged (it was changed or cut short)")
    value = decode_signed_value(secret, TOKEN_NAME, token, max_age_days=max_age / 86400)
    if value is None:
        minutes = max(1, round(max_age / 60))
        raise BadToken(
            f"this template link has expired (links are valid for {minutes} minutes); "
            "go back to where it came from and follow it again"
        )
    try:
        data = json.loads(zlib.decompress(value))
    except (zlib.error, ValueError) as error:  # signed by us, so only a bug gets here
        raise BadToken(f"this template link cannot be read: {error}") from None
    return TemplateRequest(str(data["t"]), check_params(data["p"]), str(data["r"]))
