"""The lean POST path for deliveries: keep-alive pool, per-server write order, dialling."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import OrderedDict
from collections.abc import Mapping

from multidict import CIMultiDictProxy

from fedcomments.remote.common import FetchFailed, PostResult, RemoteSettings, Signer
from fedcomments.remote.guard import FetchRefused, RefusalReason, Target
from fedcomments.remote.http1 import BadAnswer, Wire, read_body, read_head, request_bytes
from fedcomments.remote.resolver import AddressRefused, GuardedResolver
from fedcomments.remote.signing import SigningThreads

# Why a lean HTTP/1.1 POST:
#
# A fan-out sends one small POST to each of thousands of servers. aiohttp's client costs
# several times the signature per request there, so deliveries go through this short
# path instead, with the same guards: `check_url` before anything else, the guarded
# resolver for names (every address it returns was checked, and that is the address
# dialled), the connect timeout on resolution, connection and TLS handshake, the caller's
# total deadline, TLS verified against the system's CAs, answers read up to
# POST_BODY_CAP, and never a redirect followed.

#: Idle keep-alive connections kept for the next delivery to the same server.
IDLE_CONNECTIONS = 256
IDLE_SECONDS = 15.0
#: A delivery answer is read up to this size; beyond it the connection is closed, not drained.
POST_BODY_CAP = 64 * 1024
EXCERPT_BYTES = 1024

_Key = tuple[str, str, int]
#: (server, the turn before this one if still pending, this one)
Turn = tuple[_Key, "asyncio.Future[None] | None", "asyncio.Future[None]"]


def _key_of(target: Target) -> _Key:
    return target.url.scheme, target.host, target.url.port or 0


class Poster:
    """Signing threads and a keep-alive pool for deliveries (see the module comment)."""

    def __init__(self, settings: RemoteSettings, resolver: GuardedResolver,
                 tls: ssl.SSLContext) -> None:
        self._settings = settings
        self._resolver = resolver
        self._tls = tls
        self._signing = SigningThreads(settings.signing_threads)
        #: The latest place in line to write to each server (see `take_turn`).
        self._last_turn: dict[_Key, asyncio.Future[None]] = {}
        #: Idle connections, oldest first, and the same ones by server.
        self._idle: OrderedDict[Wire, tuple[_Key, float]] = OrderedDict()
        self._by_server: dict[_Key, list[Wire]] = {}

    def close(self) -> None:
        self._signing.close()
        for wire in list(self._idle):
            wire.abort()
        self._idle.clear()
        self._by_server.clear()

    async def sign(self, signer: Signer, url: str, headers: dict[str, str],
                   body: bytes) -> dict[str, str]:
        return await self._signing.sign(signer, url, dict(headers), body)

    def take_turn(self, target: Target) -> Turn:
        """A place in line to write to `target`'s server. Requests to one server are
        written in the order they were made, even when signed and connected in parallel:
        an Update sent right after its Create must not overtake it."""
        key = _key_of(target)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self._last_turn.get(key)
        self._last_turn[key] = mine
        return key, before, mine

    def end_turn(self, turn: Turn) -> None:
        key, _, mine = turn
        if not mine.done():
            mine.set_result(None)
        if self._last_turn.get(key) is mine:
            del self._last_turn[key]

    async def post(self, target: Target, headers: Mapping[str, str], body: bytes,
                   turn: Turn) -> PostResult:
        where = str(target.url)
        request = request_bytes("POST", target.url, headers, body)
        key, before, mine = turn
        while True:
            wire, reused = self._checkout(key)
            if wire is None:
                wire = await self._dial(target, key)
            try:
                if before is not None and not before.done():
                    # Not awaited directly: a cancelled wait must not cancel the other's turn.
                    await asyncio.wait({before})
                wire.received = 0
                assert wire.transport is not None
                wire.transport.write(request)
                if not mine.done():
                    mine.set_result(None)
                status, answer, keep = await read_head(wire)
            except ConnectionError as exc:
                wire.abort()
                if reused and wire.received == 0:
                    # The server closed a kept-alive connection as we reused it: once more
                    # on a fresh one (a repeated activity is deduplicated by its id).
                    continue
                raise FetchFailed(f"POST {where}: {exc}", url=where) from exc
            except BadAnswer as exc:
                wire.abort()
                raise FetchFailed(f"POST {where}: malformed answer: {exc}", url=where) from exc
            except BaseException:
                wire.abort()
                raise
            break
        try:
            raw, complete = await read_body(wire, status, answer, POST_BODY_CAP)
        except (ConnectionError, BadAnswer):
            # The status is what the delivery layer needs: keep what arrived.
            raw, complete = bytes(wire.buffer[:POST_BODY_CAP]), False
        except BaseException:
            wire.abort()
            raise
        if complete and keep:
            self._checkin(key, wire)
        else:
            wire.abort()
        return PostResult(status=status, headers=CIMultiDictProxy(answer),
                          body_excerpt=raw[:EXCERPT_BYTES].decode("utf-8", "replace"))

    def _checkout(self, key: _Key) -> tuple[Wire | None, bool]:
        now = asyncio.get_running_loop().time()
        idle = self._by_server.get(key)
        while idle:
            wire = idle.pop()
            _, since = self._idle.pop(wire)
            if wire.idle_ok and now - since < IDLE_SECONDS:
                return wire, True
            wire.abort()
        self._by_server.pop(key, None)
        return None, False

    def _checkin(self, key: _Key, wire: Wire) -> None:
        now = asyncio.get_running_loop().time()
        self._idle[wire] = (key, now)
        self._by_server.setdefault(key, []).append(wire)
        while self._idle:
            oldest, (old_key, since) = next(iter(self._idle.items()))
            if len(self._idle) <= IDLE_CONNECTIONS and now - since < IDLE_SECONDS:
                break
            del self._idle[oldest]
            self._by_server[old_key].remove(oldest)
            if not self._by_server[old_key]:
                del self._by_server[old_key]
            oldest.abort()

    async def _dial(self, target: Target, key: _Key) -> Wire:
        where = str(target.url)
        seconds = self._settings.connect_timeout
        port = key[2]
        tls = self._tls if key[0] == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                if target.address is not None:
                    addresses = [str(target.address)]  # judged by check_url already
                else:
                    found = await self._resolver.resolve(target.host, port, socket.AF_UNSPEC)
                    addresses = list(dict.fromkeys(r["host"] for r in found))
                failure: OSError = OSError(f"{target.host} has no address")
                for address in addresses:
                    try:
                        _, wire = await loop.create_connection(
                            Wire, address, port, ssl=tls,
                            server_hostname=target.host if tls else None)
                        return wire
                    except OSError as exc:  # the next address, as happy eyeballs would
                        failure = exc
                raise failure
        except AddressRefused as exc:
            raise FetchRefused(f"refused {where!r}: {exc}", url=where,
                               reason=RefusalReason.ADDRESS) from exc
        except TimeoutError as exc:
            raise FetchFailed(f"POST {where}: cannot connect: timed out after {seconds} s",
                              url=where) from exc
        except OSError as exc:
            raise FetchFailed(f"POST {where}: cannot connect: {exc}", url=where) from exc


