"""Admin API authentication: a bearer token compared in constant time."""

from __future__ import annotations

import hmac

from aiohttp import web

from fedcomments.errors import Unauthorized
from fedcomments.web.keys import RUNTIME


def require_admin(request: web.Request) -> None:
    token = request.app[RUNTIME].settings.admin.token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # With no token configured the admin API is closed, not open.
    if not token or scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise Unauthorized("admin API needs a valid bearer token ([admin] token)")
