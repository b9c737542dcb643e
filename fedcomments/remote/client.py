"""The project's only HTTP client: GET JSON and POST activities to remote instances.

Timeouts, size caps and the SSRF guard (`netguard`) apply to every hop and every resolved
address. Signing and the domain-block check are injected as callables.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from fedcomments import __version__
from fedcomments.errors import RemoteError
from fedcomments.netguard import (
    FetchRefused,
    HostCheck,
    RefusalReason,
    Target,
    address_allowed,
    check_url,
)

__all__ = [
    "AS2_ACCEPT",
    "AS2_CONTENT_TYPE",
    "AddressRefused",
    "FetchFailed",
    "FetchRefused",
    "GuardedResolver",
    "HostCheck",
    "JsonResponse",
    "PostResult",
    "RemoteClient",
    "RemoteSettings",
    "Signer",
]

log = logging.getLogger(__name__)

#: (method, url, headers about to be sent, body) -> headers to add (Date, Signature, Digest …)
Signer = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]

AS2_PROFILE = "https://www.w3.org/ns/activitystreams"
AS2_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS2_PROFILE}"'
AS2_CONTENT_TYPE = "application/activity+json"
JRD_ACCEPT = "application/jrd+json, application/json"
JRD_TYPES = frozenset({"application/jrd+json", "application/json"})
#: A delivery answer is read up to this size; beyond it the connection is closed, not drained.
POST_BODY_CAP = 64 * 1024
EXCERPT_BYTES = 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class RemoteSettings:
    """Limits for outbound HTTP; `allow_private_addresses` is for local tests and dev only."""

    allow_private_addresses: bool = False
    connect_timeout: float = 5.0
    #: deadline for a whole call: every redirect hop and the body included
    total_timeout: float = 30.0
    max_response_bytes: int = 1 << 20
    max_redirects: int = 3
    user_agent: str = f"fedcomments/{__version__}"
    #: Threads that sign POSTs. An RSA-2048 signature costs about 0.3 ms of CPU and
    #: `cryptography` releases the GIL while it works, so signing in threads runs on
    #: another core while the event loop does the HTTP of other deliveries. Two, because
    #: a signing thread also waits for the GIL after each signature (the loop holds it
    #: about half the time in a fan-out): one thread sat idle for about a third of it.
    signing_threads: int = 2

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_response_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("max_response_bytes must be positive, max_redirects >= 0")
        if self.signing_threads < 1:
            raise ValueError("signing_threads must be at least 1")


class FetchFailed(RemoteError):
    """Timeout, connection error, bad status, oversized body, wrong Content-Type or bad JSON."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        #: HTTP status when the peer answered; None for timeouts and connection errors
        self.status = status


@dataclass(frozen=True)
class JsonResponse:
    """A JSON object fetched from `url` (the final URL, after redirects)."""

    url: str
    status: int
    data: dict[str, Any]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class PostResult:
    """What a peer answered to a POST; the delivery layer classifies it."""

    status: int
    headers: Mapping[str, str]
    body_excerpt: str

    @property
    def retry_after(self) -> str | None:
        """The raw Retry-After header (seconds or an HTTP date), if any."""
        return self.headers.get("Retry-After")


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


class RemoteClient:
    """Signed, guarded HTTP to other instances; `start()` before use, `close()` after."""

    def __init__(
        self,
        settings: RemoteSettings,
        *,
        signer: Signer | None = None,
        is_blocked: HostCheck | None = None,
    ) -> None:
        self._settings = settings
        self._signer = signer
        self._is_blocked = is_blocked
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._poster: _Poster | None = None

    async def start(self) -> None:
        """Create the connection pools; a second call is a no-op."""
        if self._session is not None:
            return
        resolver = GuardedResolver(
            aiohttp.DefaultResolver(), allow_private=self._settings.allow_private_addresses
        )
        timeout = self._settings.connect_timeout
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver),
            # The overall deadline is an asyncio.timeout around each call (redirects included).
            timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout),
            # An environment proxy would resolve and dial the target itself, out of the
            # guard's reach; cookies would carry state from one instance to another.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._resolver = resolver
        # Loading the system's CA certificates reads files: done once, off the loop.
        tls = await asyncio.to_thread(ssl.create_default_context)
        self._poster = _Poster(self._settings, resolver, tls)

    async def close(self) -> None:
        """Close the pools; safe to call twice."""
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        poster, self._poster = self._poster, None
        if poster is not None:
            poster.close()
        if session is not None:
            await session.close()
        if resolver is not None:
            # The connector does not own a resolver it was given.
            await resolver.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def get_json(
        self,
        url: str,
        *,
        signed: bool = True,
        accept: str = AS2_ACCEPT,
        allowed_types: Collection[str] | None = None,
    ) -> JsonResponse:
        """GET a JSON object, following up to `max_redirects` redirects, each re-checked.

        `allowed_types` (lowercase media types) replaces the ActivityStreams rule: by
        default only application/activity+json, or application/ld+json whose profile
        names ActivityStreams, is read.
        """
        signer = self._pick_signer(signed, None)
        try:
            async with asyncio.timeout(self._settings.total_timeout):
                return await self._get_following(url, signer, accept, allowed_types)
        except TimeoutError as exc:
            seconds = self._settings.total_timeout
            raise FetchFailed(f"GET {url}: timed out after {seconds} s", url=url) from exc

    async def get_jrd(self, url: str) -> JsonResponse:
        """GET a WebFinger (JRD) document, unsigned, as most servers expect."""
        return await self.get_json(url, signed=False, accept=JRD_ACCEPT, allowed_types=JRD_TYPES)

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str = AS2_CONTENT_TYPE,
        sign: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        signer: Signer | None = None,
    ) -> PostResult:
        """POST `body` and return the answer, whatever its status; never follows redirects.

        Raises FetchRefused when the guard refuses the URL, FetchFailed (status None) on
        timeouts and connection errors. Deliveries take the lean path (`_Poster`): the
        signature is made in a signing thread, the request goes out on a pooled
        HTTP/1.1 connection.
        """
        chosen = self._pick_signer(sign, signer)
        target = self._check(url)
        if self._poster is None:
            raise RuntimeError("RemoteClient used before start()")
        poster = self._poster
        extra = {"Content-Type": content_type, **(extra_headers or {})}
        turn = poster.take_turn(target)
        try:
            async with asyncio.timeout(self._settings.total_timeout):
                headers = self._headers("POST", target.url, extra, body, None)
                if chosen is not None:
                    _merge(headers, await poster.sign(chosen, str(target.url), headers, body))
                return await poster.post(target, headers, body, turn)
        except TimeoutError as exc:
            seconds = self._settings.total_timeout
            raise FetchFailed(f"POST {url}: timed out after {seconds} s", url=url) from exc
        finally:
            poster.end_turn(turn)

    async def _get_following(
        self,
        url: str,
        signer: Signer | None,
        accept: str,
        allowed_types: Collection[str] | None,
    ) -> JsonResponse:
        current: str | URL = url
        redirects = 0
        while True:
            # Every hop is checked and signed afresh: a redirect may lead to another host,
            # and a signature covers the request target and Host of one request only.
            target = self._check(current)
            headers = self._headers("GET", target.url, {"Accept": accept}, None, signer)
            async with self._exchange("GET", target.url, headers, None) as resp:
                if resp.status not in _REDIRECT_STATUSES:
                    return await self._read_json(target.url, resp, allowed_types)
                if redirects >= self._settings.max_redirects:
                    raise FetchFailed(
                        f"GET {url}: more than {self._settings.max_redirects} redirects",
                        url=str(target.url),
                        status=resp.status,
                    )
                redirects += 1
                current = _redirect_location(target.url, resp)

    async def _read_json(
        self, url: URL, resp: aiohttp.ClientResponse, allowed_types: Collection[str] | None
    ) -> JsonResponse:
        where = str(url)
        if resp.status != 200:
            # Mastodon only reads a document from a 200; anything else is not one.
            raise FetchFailed(f"GET {where} answered {resp.status}", url=where, status=resp.status)
        raw_type = resp.headers.get("Content-Type", "")
        media, params = _media_type(raw_type)
        ok = media in allowed_types if allowed_types is not None else _is_as2(media, params)
        if not ok:
            raise FetchFailed(
                f"GET {where}: unexpected Content-Type {raw_type!r}", url=where, status=resp.status
            )
        cap = self._settings.max_response_bytes
        body, overflow = await _read_capped(resp, cap)
        if overflow:
            raise FetchFailed(
                f"GET {where}: body larger than {cap} bytes", url=where, status=resp.status
            )
        try:
            data = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise FetchFailed(f"GET {where}: invalid JSON", url=where, status=resp.status) from exc
        if not isinstance(data, dict):
            raise FetchFailed(f"GET {where}: JSON is not an object", url=where, status=resp.status)
        return JsonResponse(url=where, status=resp.status, data=data, headers=_freeze(resp.headers))

    def _check(self, url: str | URL) -> Target:
        return check_url(
            url,
            allow_private=self._settings.allow_private_addresses,
            is_blocked=self._is_blocked,
        )

    def _pick_signer(self, sign: bool, override: Signer | None) -> Signer | None:
        if not sign:
            return None
        chosen = override or self._signer
        if chosen is None:
            raise ValueError("a signed request needs a signer (RemoteClient(signer=…) or signer=)")
        return chosen

    def _headers(
        self,
        method: str,
        url: URL,
        extra: Mapping[str, str],
        body: bytes | None,
        signer: Signer | None,
    ) -> dict[str, str]:
        # Host is set explicitly (aiohttp keeps a given Host) so that the value a
        # signature covers is exactly the value sent.
        host = url.host_port_subcomponent
        assert host is not None  # check_url refuses host-less URLs
        headers = {"Host": host, "User-Agent": self._settings.user_agent}
        _merge(headers, extra)
        if signer is not None:
            _merge(headers, signer(method, str(url), dict(headers), body))
        return headers

    @asynccontextmanager
    async def _exchange(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, no redirects; aiohttp failures become FetchRefused / FetchFailed."""
        if self._session is None:
            raise RuntimeError("RemoteClient used before start()")
        where = str(url)
        try:
            async with self._session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            ) as resp:
                yield resp
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise FetchRefused(
                    f"refused {where!r}: {exc.os_error}", url=where, reason=RefusalReason.ADDRESS
                ) from exc
            raise FetchFailed(f"{method} {where}: cannot connect: {exc}", url=where) from exc
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"{method} {where}: {type(exc).__name__}: {exc}", url=where) from exc


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` body bytes as they stream in; True means there was more.

    Content-Length is not trusted: chunked bodies have none and a compressed body's
    length says nothing of its decoded size (aiohttp decodes in bounded steps, so the
    cap also stops decompression bombs). On overflow the connection is closed rather
    than drained.
    """
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        if len(buf) + len(chunk) > limit:
            buf += chunk[: limit - len(buf)]
            resp.close()
            return bytes(buf), True
        buf += chunk
    return bytes(buf), False


def _redirect_location(base: URL, resp: aiohttp.ClientResponse) -> URL:
    location = resp.headers.get("Location")
    where = str(base)
    if not location:
        raise FetchFailed(f"GET {where}: redirect without Location", url=where, status=resp.status)
    try:
        return base.join(URL(location)).with_fragment(None)
    except ValueError as exc:
        raise FetchFailed(
            f"GET {where}: unusable Location {location!r}", url=where, status=resp.status
        ) from exc


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lowercase media type and its parameters."""
    media = value.split(";", 1)[0].strip().lower()
    params = {
        name.lower(): raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw.strip()
        for name, raw in _PARAM.findall(value)
    }
    return media, params


def _is_as2(media: str, params: Mapping[str, str]) -> bool:
    if media == "application/activity+json":
        return True
    # Mastodon reads application/ld+json only when the profile parameter lists the
    # ActivityStreams URI, so every server it federates with already labels documents
    # that way; a bare ld+json is usually a different JSON-LD vocabulary.
    return media == "application/ld+json" and AS2_PROFILE in params.get("profile", "").split()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _merge(headers: dict[str, str], more: Mapping[str, str]) -> None:
    """Set `more` into `headers`, replacing names case-insensitively."""
    replaced = {name.lower() for name in more}
    for existing in [key for key in headers if key.lower() in replaced]:
        del headers[existing]
    headers.update(more)


def _freeze(headers: Mapping[str, str]) -> Mapping[str, str]:
    return CIMultiDictProxy(CIMultiDict(headers))


# --- deliveries: a lean HTTP/1.1 POST ---------------------------------------------------
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
#: The largest status line plus headers read from an answer.
HEAD_CAP = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_UNSAFE_VALUE = re.compile(r"[\x00\r\n]")
_HEX = re.compile(rb"[0-9A-Fa-f]+\Z")
#: Framing is ours to write: a caller's values for these are dropped.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})

_Key = tuple[str, str, int]
#: (server, the turn before this one if still pending, this one)
_Turn = tuple[_Key, "asyncio.Future[None] | None", "asyncio.Future[None]"]


def _key_of(target: Target) -> _Key:
    return target.url.scheme, target.host, target.url.port or 0


class _BadAnswer(Exception):
    """The peer's bytes are not an HTTP/1.1 answer we can read."""


class _Wire(asyncio.Protocol):
    """One HTTP/1.1 connection: received bytes pile up in `buffer` for the reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.received = 0
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not subclass asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received += len(data)
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def more(self) -> None:
        """Wait for more bytes; ConnectionResetError once the peer has closed."""
        if self.closed:
            raise ConnectionResetError("the server closed the connection")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    @property
    def idle_ok(self) -> bool:
        """Still open with nothing unread: fit to carry another request."""
        return (not self.closed and self.transport is not None
                and not self.transport.is_closing() and not self.buffer)

    def abort(self) -> None:
        """Drop the connection without draining it (an answer over the cap, an error)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


_Job = tuple[asyncio.Future[dict[str, str]], Signer, str, dict[str, str], bytes]


class _Signing:
    """Threads that sign POSTs, taken up in the order they were asked for (with several
    threads they may finish in another order; `_Poster.take_turn` keeps the writes to one
    server in order).

    Finished signatures go back to the event loop together: one wake-up of the loop for
    all that are ready (an executor wakes it once per signature, which at fan-out rates
    costs the loop a good part of what the signature costs the thread).
    """

    def __init__(self, threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._done: list[tuple[asyncio.Future[dict[str, str]], bool, Any]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = [threading.Thread(target=self._work, name=f"fedcomments-sign-{n}",
                                          daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def sign(self, signer: Signer, url: str, headers: dict[str, str],
             body: bytes) -> asyncio.Future[dict[str, str]]:
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        self._jobs.put((future, signer, url, headers, body))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, signer, url, headers, body = job
            try:
                outcome: tuple[asyncio.Future[dict[str, str]], bool, Any] = (
                    future, True, signer("POST", url, headers, body))
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (future, False, exc)
            with self._lock:
                self._done.append(outcome)
                first = len(self._done) == 1
            if first and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._settle)
                except RuntimeError:  # the loop is closed: nobody awaits these any more
                    return

    def _settle(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, ok, value in done:
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class _Poster:
    """Signing threads and a keep-alive pool for deliveries (see the section comment)."""

    def __init__(self, settings: RemoteSettings, resolver: GuardedResolver,
                 tls: ssl.SSLContext) -> None:
        self._settings = settings
        self._resolver = resolver
        self._tls = tls
        self._signing = _Signing(settings.signing_threads)
        #: The latest place in line to write to each server (see `take_turn`).
        self._last_turn: dict[_Key, asyncio.Future[None]] = {}
        #: Idle connections, oldest first, and the same ones by server.
        self._idle: OrderedDict[_Wire, tuple[_Key, float]] = OrderedDict()
        self._by_server: dict[_Key, list[_Wire]] = {}

    def close(self) -> None:
        self._signing.close()
        for wire in list(self._idle):
            wire.abort()
        self._idle.clear()
        self._by_server.clear()

    async def sign(self, signer: Signer, url: str, headers: dict[str, str],
                   body: bytes) -> dict[str, str]:
        return await self._signing.sign(signer, url, dict(headers), body)

    def take_turn(self, target: Target) -> _Turn:
        """A place in line to write to `target`'s server. Requests to one server are
        written in the order they were made, even when signed and connected in parallel:
        an Update sent right after its Create must not overtake it."""
        key = _key_of(target)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self._last_turn.get(key)
        self._last_turn[key] = mine
        return key, before, mine

    def end_turn(self, turn: _Turn) -> None:
        key, _, mine = turn
        if not mine.done():
            mine.set_result(None)
        if self._last_turn.get(key) is mine:
            del self._last_turn[key]

    async def post(self, target: Target, headers: Mapping[str, str], body: bytes,
                   turn: _Turn) -> PostResult:
        where = str(target.url)
        request = _request_bytes("POST", target.url, headers, body)
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
                status, answer, keep = await _read_head(wire)
            except ConnectionError as exc:
                wire.abort()
                if reused and wire.received == 0:
                    # The server closed a kept-alive connection as we reused it: once more
                    # on a fresh one (a repeated activity is deduplicated by its id).
                    continue
                raise FetchFailed(f"POST {where}: {exc}", url=where) from exc
            except _BadAnswer as exc:
                wire.abort()
                raise FetchFailed(f"POST {where}: malformed answer: {exc}", url=where) from exc
            except BaseException:
                wire.abort()
                raise
            break
        try:
            raw, complete = await _read_body(wire, status, answer, POST_BODY_CAP)
        except (ConnectionError, _BadAnswer):
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

    def _checkout(self, key: _Key) -> tuple[_Wire | None, bool]:
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

    def _checkin(self, key: _Key, wire: _Wire) -> None:
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

    async def _dial(self, target: Target, key: _Key) -> _Wire:
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
                            _Wire, address, port, ssl=tls,
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


def _request_bytes(method: str, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request as sent; a header that could split the request is refused."""
    lines = [f"{method} {url.raw_path_qs} HTTP/1.1"]
    for name, value in headers.items():
        if not _TOKEN.match(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent as given")
        if name.lower() not in _FRAMING:
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_until(wire: _Wire, mark: bytes, cap: int) -> bytes:
    while True:
        end = wire.buffer.find(mark)
        if end >= 0:
            found = bytes(wire.buffer[:end])
            del wire.buffer[:end + len(mark)]
            return found
        if len(wire.buffer) > cap:
            raise _BadAnswer(f"no end of line within {cap} bytes")
        await wire.more()


async def _read_head(wire: _Wire) -> tuple[int, CIMultiDict[str], bool]:
    """Status, headers, and whether the connection may be kept (1xx answers skipped)."""
    while True:
        lines = (await _read_until(wire, b"\r\n\r\n", HEAD_CAP)).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (
                len(code) == 3 and code.isdigit() and rest[3:4] in (b"", b" ")):
            raise _BadAnswer(f"status line {lines[0][:80]!r}")
        status = int(code)
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.match(name.decode("latin-1")):
                raise _BadAnswer(f"header line {line[:80]!r}")
            headers.add(name.decode("latin-1"), value.strip(b" \t").decode("latin-1"))
        if status == 101:
            raise _BadAnswer("switching protocols, which was never asked for")
        if status >= 200:
            keep = version == b"HTTP/1.1" and "close" not in headers.get(
                "Connection", "").lower()
            return status, headers, keep


async def _read_body(wire: _Wire, status: int, headers: Mapping[str, str],
                     cap: int) -> tuple[bytes, bool]:
    """At most `cap` body bytes, and whether the body was read to its end."""
    if status in (204, 304):
        return b"", True
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return await _read_chunked(wire, cap)
    length = headers.get("Content-Length")
    if length is None:  # the body runs until the server closes
        while not wire.closed and len(wire.buffer) <= cap:
            await wire.more()
        return bytes(wire.buffer[:cap]), False
    if not length.isdigit():
        raise _BadAnswer(f"Content-Length {length[:40]!r}")
    size = int(length)
    while len(wire.buffer) < size:
        if len(wire.buffer) > cap:
            return bytes(wire.buffer[:cap]), False
        await wire.more()
    body = bytes(wire.buffer[:size])
    del wire.buffer[:size]
    return body[:cap], size <= cap


async def _read_chunked(wire: _Wire, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_text = (await _read_until(wire, b"\r\n", 1024)).split(b";", 1)[0].strip()
        if not _HEX.match(size_text):
            raise _BadAnswer(f"chunk size {size_text[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            while await _read_until(wire, b"\r\n", HEAD_CAP):
                pass  # trailer fields, up to the empty line
            return bytes(body[:cap]), len(body) <= cap
        while len(wire.buffer) < size + 2:
            if len(body) + len(wire.buffer) > cap:
                return bytes((body + wire.buffer)[:cap]), False
            await wire.more()
        if wire.buffer[size:size + 2] != b"\r\n":
            raise _BadAnswer("chunk without its line end")
        body += wire.buffer[:size]
        del wire.buffer[:size + 2]
        if len(body) > cap:
            return bytes(body[:cap]), False
