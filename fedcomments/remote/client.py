"""Signed, guarded GETs of JSON documents (aiohttp) and the entry point for delivery POSTs.

Timeouts, size caps and the SSRF guard (`guard`) apply to every hop and every resolved
address. Signing and the domain-block check are injected as callables.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from fedcomments.names import origin
from fedcomments.remote.common import (
    AS2_ACCEPT,
    AS2_CONTENT_TYPE,
    AS2_PROFILE,
    MEDIA_ACCEPT,
    Document,
    FetchFailed,
    JsonResponse,
    MediaResponse,
    PostResult,
    RemoteSettings,
    Signer,
    merge_headers,
)
from fedcomments.remote.guard import FetchRefused, HostCheck, RefusalReason, Target, check_url
from fedcomments.remote.post import Poster
from fedcomments.remote.resolver import AddressRefused, GuardedResolver

JRD_ACCEPT = "application/jrd+json, application/json"
JRD_TYPES = frozenset({"application/jrd+json", "application/json"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')

#: Makes the resolver that looks names up (the guard filters what it answers); the
#: system's by default.
ResolverFactory = Callable[[], AbstractResolver]


class RemoteClient:
    """Signed, guarded HTTP to other instances; `start()` before use, `close()` after."""

    def __init__(
        self,
        settings: RemoteSettings,
        *,
        signer: Signer | None = None,
        is_blocked: HostCheck | None = None,
        before_get: Callable[[], Awaitable[None]] | None = None,
        resolver: ResolverFactory | None = None,
    ) -> None:
        """`is_blocked` refuses hosts; `before_get` runs before each GET hop is checked
        (to bring what `is_blocked` knows up to date)."""
        self._settings = settings
        self._signer = signer
        self._is_blocked = is_blocked
        self._before_get = before_get
        self._make_resolver: ResolverFactory = resolver or aiohttp.DefaultResolver
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._poster: Poster | None = None

    async def start(self) -> None:
        """Create the connection pools; a second call is a no-op."""
        if self._session is not None:
            return
        resolver = GuardedResolver(
            self._make_resolver(), allow_private=self._settings.allow_private_addresses
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
        self._poster = Poster(self._settings, resolver, tls)

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
        names ActivityStreams, is read, and only from the origin of `url`: a redirect to
        another origin fails (FetchFailed), so an ActivityPub document always comes from
        the origin its id is checked against.
        """
        signer = self._pick_signer(signed, None)
        try:
            async with asyncio.timeout(self._settings.total_timeout):
                return await self._get_following(url, signer, accept, allowed_types)
        except TimeoutError as exc:
            seconds = self._settings.total_timeout
            raise FetchFailed(f"GET {url}: timed out after {seconds} s", url=url) from exc

    async def get_document(
        self,
        url: str,
        *,
        accept: str,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Document:
        """GET any document, unsigned, as bytes (at most `max_bytes`), following redirects
        with each hop re-checked; conditional when `etag`/`last_modified` are given (a 304
        comes back as such, with no body). Other statuses raise FetchFailed."""
        extra = {"Accept": accept}
        if etag:
            extra["If-None-Match"] = etag
        if last_modified:
            extra["If-Modified-Since"] = last_modified
        try:
            async with asyncio.timeout(self._settings.total_timeout):
                current: str | URL = url
                for _ in range(self._settings.max_redirects + 1):
                    target = await self._check_get(current)
                    headers = self._headers("GET", target.url, extra, None, None)
                    async with self._exchange("GET", target.url, headers, None) as resp:
                        if resp.status in _REDIRECT_STATUSES:
                            current = _redirect_location(target.url, resp)
                            continue
                        return await self._read_document(target.url, resp, max_bytes)
        except TimeoutError as exc:
            seconds = self._settings.total_timeout
            raise FetchFailed(f"GET {url}: timed out after {seconds} s", url=url) from exc
        raise FetchFailed(f"GET {url}: more than {self._settings.max_redirects} redirects",
                          url=str(current))

    async def _read_document(self, url: URL, resp: aiohttp.ClientResponse, max_bytes: int
                             ) -> Document:
        where = str(url)
        if resp.status == 304:
            return Document(where, 304, b"", _freeze(resp.headers))
        if resp.status != 200:
            raise FetchFailed(f"GET {where} answered {resp.status}", url=where, status=resp.status)
        body, overflow = await _read_capped(resp, max_bytes)
        if overflow:
            raise FetchFailed(f"GET {where}: body larger than {max_bytes} bytes", url=where,
                              status=resp.status)
        return Document(where, 200, body, _freeze(resp.headers))

    async def get_jrd(self, url: str) -> JsonResponse:
        """GET a WebFinger (JRD) document, unsigned, as most servers expect."""
        return await self.get_json(url, signed=False, accept=JRD_ACCEPT, allowed_types=JRD_TYPES)

    async def get_media(self, url: str, *, max_bytes: int) -> MediaResponse:
        """GET an image as `get_document` does: unsigned (media servers and their CDNs
        expect no signature, as Mastodon fetches them), each redirect checked by the guard
        again (media often live on another host). Only a 200 whose body fits in
        `max_bytes` is returned; its type is the decoder's to check."""
        doc = await self.get_document(url, accept=MEDIA_ACCEPT, max_bytes=max_bytes)
        if doc.status != 200:  # a 304 nobody asked for
            raise FetchFailed(f"GET {doc.url} answered {doc.status}", url=doc.url,
                              status=doc.status)
        return MediaResponse(doc.url, doc.headers.get("Content-Type", ""), doc.body)

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
        timeouts and connection errors. Deliveries take the lean path (`Poster`): the
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
                    signed = await poster.sign(chosen, str(target.url), headers, body)
                    merge_headers(headers, signed)
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
            target = await self._check_get(current)
            if redirects and allowed_types is None and origin(str(target.url)) != origin(url):
                # An actor, key or note never lives on another origin than its id, and
                # the id is checked against the URL asked for: a redirect to another
                # server would let that server's document speak for ids on this one.
                # (Mastodon's fix for CVE-2024-23832 checks the final URL's host.)
                raise FetchFailed(f"GET {url}: redirected to another origin ({target.url})",
                                  url=str(target.url))
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

    async def _check_get(self, url: str | URL) -> Target:
        """The guard's verdict on one GET hop, after `before_get` (blocks up to date)."""
        if self._before_get is not None:
            await self._before_get()
        return self._check(url)

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
        merge_headers(headers, extra)
        if signer is not None:
            merge_headers(headers, signer(method, str(url), dict(headers), body))
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


def _freeze(headers: Mapping[str, str]) -> Mapping[str, str]:
    return CIMultiDictProxy(CIMultiDict(headers))

