"""The SSRF guard at resolution time: a resolver that hands the connector allowed addresses only."""

from __future__ import annotations

import logging
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from fedcomments.remote.guard import address_allowed

log = logging.getLogger(__name__)


class AddressRefused(OSError):
    """A name resolved only to forbidden addresses.

    An OSError because aiohttp wraps resolver OSErrors into ClientConnectorDNSError,
    which is where RemoteClient finds it again.
    """


class GuardedResolver(AbstractResolver):
    """Resolver that drops forbidden addresses, so the connector can only dial allowed ones.

    The check sits between resolution and connect: a DNS answer that changes between an
    earlier look-up and the connection (DNS rebinding) is still filtered. aiohttp does
    not call the resolver for IP literals; `check_url` covers those.
    """

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], self._allow_private)]
        if results and not allowed:
            found = ", ".join(sorted({r["host"] for r in results}))
            raise AddressRefused(f"{host} resolves only to forbidden addresses ({found})")
        if len(allowed) < len(results):
            # Like Mastodon, which skips a forbidden address and tries the next one.
            dropped = sorted({r["host"] for r in results} - {r["host"] for r in allowed})
            log.info("dropping forbidden addresses of %s: %s", host, ", ".join(dropped))
        return allowed

    async def close(self) -> None:
        await self._inner.close()

