"""Typed application keys: the only way handlers reach shared objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import jinja2
from aiohttp import web

from fedcomments.config import Settings
from fedcomments.runtime import Runtime

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
TEMPLATES = web.AppKey("templates", jinja2.Environment)

#: Request key: fields a handler adds to the request's one access-log line.
LOG_FIELDS = web.RequestKey("log_fields", dict[str, str])
