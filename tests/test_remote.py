"""RemoteClient against real aiohttp servers on 127.0.0.1: signing, caps, redirects, SSRF guard."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from fedcomments.remote import (
    AS2_ACCEPT,
    AddressRefused,
    FetchFailed,
    FetchRefused,
    GuardedResolver,
    RemoteClient,
    RemoteSettings,
)
from fedcomments.remote.guard import RefusalReason

AS2 = "application/activity+json"
LD_AS2 = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
DOC = {"id": "https://remote.example/users/alice", "type": "Person"}
UA = "fedcomments/test (+http://127.0.0.1)"
DEV = RemoteSettings(allow_private_addresses=True, total_timeout=5.0, user_agent=UA)
PROD = RemoteSettings(allow_private_addresses=False, total_timeout=5.0, user_agent=UA)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Peer:
    """A fake remote instance that records every request it receives."""

    server: TestServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)


PeerFactory = Callable[[dict[str, Handler]], Awaitable[Peer]]


@pytest.fixture
async def make_peer(aiohttp_server: Any) -> PeerFactory:
    """Start a real aiohttp server on 127.0.0.1 serving `routes` (path -> handler)."""

    async def start(routes: dict[str, Handler]) -> Peer:
        seen: list[Seen] = []

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            body = await request.read()
            seen.append(Seen(request.method, request.path, CIMultiDict(request.headers), body))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        server = await aiohttp_server(app)
        return Peer(server=server, seen=seen)

    return start


class Listener:
    """A bare TCP listener that counts connections and hangs up: proof of "never connected"."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    lst = Listener()
    await lst.start()
    yield lst
    await lst.close()


class RecordingSigner:
    """Stands in for HTTP signatures: a header naming the exact target it was made for."""

    def __init__(self, key_id: str = "https://blog.example/actor#main-key") -> None:
        self.key_id = key_id
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> dict[str, str]:
        self.calls.append((method, url, dict(headers), body))
        return {
            "Date": "Fri, 07 Jun 2024 20:51:35 GMT",
            "Signature": f'keyId="{self.key_id}",target="{method} {url}",host="{headers["Host"]}"',
        }


def json_handler(doc: Any = DOC, content_type: str = AS2, status: int = 200) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    return handle


def redirect_handler(location: str, status: int = 302) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    return handle


@pytest.fixture
async def client() -> AsyncIterator[RemoteClient]:
    async with RemoteClient(DEV, signer=RecordingSigner()) as c:
        yield c


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# --- lifecycle ---------------------------------------------------------------------


async def test_client_refuses_work_before_start() -> None:
    """Using the client before start() is a programming error, not a network failure."""
    c = RemoteClient(DEV)
    with pytest.raises(RuntimeError, match="before start"):
        await c.get_json("http://127.0.0.1:9/", signed=False)


async def test_close_is_idempotent_and_restart_works(make_peer: PeerFactory) -> None:
    """close() twice is harmless and the client can be started again."""
    peer = await make_peer({"/doc": json_handler()})
    c = RemoteClient(DEV)
    await c.start()
    await c.close()
    await c.close()
    await c.start()
    try:
        assert (await c.get_json(peer.url("/doc"), signed=False)).data == DOC
    finally:
        await c.close()


# --- signing and headers -----------------------------------------------------------


async def test_signed_get_carries_signer_headers(make_peer: PeerFactory) -> None:
    """The signer sees the exact request and its headers reach the peer."""
    peer = await make_peer({"/users/alice": json_handler()})
    signer = RecordingSigner()
    url = peer.url("/users/alice")
    async with RemoteClient(DEV, signer=signer) as c:
        result = await c.get_json(url)

    assert result.data == DOC and result.status == 200 and result.url == url
    host = f"127.0.0.1:{peer.port}"
    assert signer.calls == [
        ("GET", url, {"Host": host, "User-Agent": UA, "Accept": AS2_ACCEPT}, None)
    ]
    (seen,) = peer.seen
    assert seen.headers["Signature"] == f'keyId="{signer.key_id}",target="GET {url}",host="{host}"'
    assert seen.headers["Date"] == "Fri, 07 Jun 2024 20:51:35 GMT"
    assert seen.headers["Host"] == host
    assert seen.headers["Accept"] == AS2_ACCEPT
    assert seen.headers["User-Agent"] == UA
    assert "Cookie" not in seen.headers


async def test_unsigned_get_never_calls_the_signer(make_peer: PeerFactory) -> None:
    """signed=False sends no signature at all."""
    peer = await make_peer({"/doc": json_handler()})
    signer = RecordingSigner()
    async with RemoteClient(DEV, signer=signer) as c:
        await c.get_json(peer.url("/doc"), signed=False)
    assert signer.calls == []
    assert "Signature" not in peer.seen[0].headers


async def test_signed_get_without_a_signer_fails_before_sending(make_peer: PeerFactory) -> None:
    """Asking for a signature with no signer configured is an error, not a silent downgrade."""
    peer = await make_peer({"/doc": json_handler()})
    async with RemoteClient(DEV) as c:
        with pytest.raises(ValueError, match="signer"):
            await c.get_json(peer.url("/doc"))
    assert peer.seen == []


# --- content type and body -----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        AS2,
        "application/activity+json; charset=utf-8",
        "Application/Activity+JSON",
        LD_AS2,
        'application/ld+json;profile="https://www.w3.org/ns/activitystreams https://w3id.org/x"',
        "application/ld+json; profile=https://www.w3.org/ns/activitystreams",
    ],
)
async def test_activitystreams_types_are_accepted(
    make_peer: PeerFactory, client: RemoteClient, content_type: str
) -> None:
    """activity+json, and ld+json whose profile lists ActivityStreams, are read."""
    peer = await make_peer({"/doc": json_handler(content_type=content_type)})
    assert (await client.get_json(peer.url("/doc"))).data == DOC


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/ld+json",
        'application/ld+json; profile="https://example.com/other"',
        "application/jrd+json",
        "text/html; charset=utf-8",
        "application/octet-stream",
    ],
)
async def test_other_types_are_refused(
    make_peer: PeerFactory, client: RemoteClient, content_type: str
) -> None:
    """Anything that does not declare itself ActivityStreams is not parsed."""
    peer = await make_peer({"/doc": json_handler(content_type=content_type)})
    with pytest.raises(FetchFailed, match="Content-Type") as info:
        await client.get_json(peer.url("/doc"))
    assert info.value.status == 200


async def test_custom_allowed_types_replace_the_as2_rule(
    make_peer: PeerFactory, client: RemoteClient
) -> None:
    """A caller that asked for plain JSON may accept it, and then only it."""
    peer = await make_peer(
        {"/json": json_handler(content_type="application/json"), "/as": json_handler()}
    )
    got = await client.get_json(
        peer.url("/json"), accept="application/json", allowed_types={"application/json"}
    )
    assert got.data == DOC
    assert peer.seen[0].headers["Accept"] == "application/json"
    with pytest.raises(FetchFailed, match="Content-Type"):
        await client.get_json(peer.url("/as"), allowed_types={"application/json"})


@pytest.mark.parametrize("content_type", ["application/jrd+json", "application/json"])
async def test_get_jrd_reads_webfinger_unsigned(make_peer: PeerFactory, content_type: str) -> None:
    """WebFinger accepts jrd+json or json and goes out without a signature."""
    jrd = {"subject": "acct:alice@remote.example", "links": []}
    peer = await make_peer({"/.well-known/webfinger": json_handler(jrd, content_type)})
    signer = RecordingSigner()
    async with RemoteClient(DEV, signer=signer) as c:
        got = await c.get_jrd(peer.url("/.well-known/webfinger") + "?resource=acct:alice@x")
    assert got.data == jrd
    assert signer.calls == []
    assert "Signature" not in peer.seen[0].headers
    assert peer.seen[0].headers["Accept"] == "application/jrd+json, application/json"


async def test_get_jrd_refuses_activitystreams(make_peer: PeerFactory) -> None:
    """The WebFinger call keeps its own type list."""
    peer = await make_peer({"/wf": json_handler()})
    async with RemoteClient(DEV) as c:
        with pytest.raises(FetchFailed, match="Content-Type"):
            await c.get_jrd(peer.url("/wf"))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[1, 2]", "not an object"),
        (b'"text"', "not an object"),
        (b"{not json", "invalid JSON"),
        (b'{"a": NaN}', "invalid JSON"),
        (b"\xff\xfe{}", "invalid JSON"),
        (b"", "invalid JSON"),
    ],
)
async def test_body_must_be_a_json_object(
    make_peer: PeerFactory, client: RemoteClient, body: bytes, match: str
) -> None:
    """Arrays, scalars, broken or non-standard JSON are refused."""
    peer = await make_peer({"/doc": json_handler(body)})
    with pytest.raises(FetchFailed, match=match):
        await client.get_json(peer.url("/doc"))


@pytest.mark.parametrize("status", [201, 304, 400, 401, 404, 410, 500, 503])
async def test_non_200_status_fails_and_carries_status(
    make_peer: PeerFactory, client: RemoteClient, status: int
) -> None:
    """Only a 200 is a document; the status travels on the error."""
    peer = await make_peer({"/doc": json_handler(status=status)})
    with pytest.raises(FetchFailed) as info:
        await client.get_json(peer.url("/doc"))
    assert info.value.status == status
    assert info.value.url == peer.url("/doc")


async def test_response_headers_are_case_insensitive(
    make_peer: PeerFactory, client: RemoteClient
) -> None:
    """Callers can read headers in any case."""
    peer = await make_peer({"/doc": json_handler()})
    got = await client.get_json(peer.url("/doc"))
    assert got.headers["content-type"] == AS2 == got.headers["Content-Type"]


# --- size cap ------------------------------------------------------------------------


def padded_doc(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    shell = b'{"pad":""}'
    return shell[:-2] + b"x" * (size - len(shell)) + shell[-2:]


async def test_body_at_the_cap_is_read_and_one_byte_more_is_refused(
    make_peer: PeerFactory,
) -> None:
    """The cap is inclusive: max_response_bytes passes, one more byte fails."""
    peer = await make_peer(
        {"/fits": json_handler(padded_doc(4096)), "/over": json_handler(padded_doc(4097))}
    )
    settings = RemoteSettings(allow_private_addresses=True, max_response_bytes=4096)
    async with RemoteClient(settings) as c:
        assert len((await c.get_json(peer.url("/fits"), signed=False)).data["pad"]) == 4086
        with pytest.raises(FetchFailed, match="larger than 4096 bytes"):
            await c.get_json(peer.url("/over"), signed=False)


async def test_chunked_body_over_cap_fails_and_connection_is_closed(
    make_peer: PeerFactory,
) -> None:
    """A body with no Content-Length is cut off at the cap and the socket is dropped."""
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": AS2})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await resp.write(b'{"pad":"')
            for _ in range(4096):  # 64 MiB: far more than any client buffer
                await resp.write(b"x" * 16384)
        except (ConnectionError, asyncio.CancelledError):
            # aiohttp cancels the handler, or the write fails, once the peer is gone
            outcome.set_result("client hung up")
            raise
        outcome.set_result("sent everything")
        return resp

    peer = await make_peer({"/big": endless})
    settings = RemoteSettings(allow_private_addresses=True, max_response_bytes=64 * 1024)
    async with RemoteClient(settings) as c:
        with pytest.raises(FetchFailed, match="larger than 65536 bytes") as info:
            await c.get_json(peer.url("/big"), signed=False)
        assert info.value.status == 200
        assert await asyncio.wait_for(outcome, timeout=10) == "client hung up"


async def test_compressed_body_is_capped_after_decoding(make_peer: PeerFactory) -> None:
    """A small Content-Length of gzip data does not let a large document through."""
    bomb = gzip.compress(padded_doc(4 << 20))
    assert len(bomb) < 16 * 1024

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Type": AS2, "Content-Encoding": "gzip"})

    peer = await make_peer({"/bomb": handle})
    settings = RemoteSettings(allow_private_addresses=True, max_response_bytes=1 << 20)
    async with RemoteClient(settings) as c:
        with pytest.raises(FetchFailed, match="larger than 1048576 bytes"):
            await c.get_json(peer.url("/bomb"), signed=False)


# --- redirects -----------------------------------------------------------------------


def chain_routes(length: int) -> dict[str, Handler]:
    """/r/N redirects to /r/N-1 (relative Location) ... /r/0 is the document."""
    routes: dict[str, Handler] = {"/r/0": json_handler()}
    for n in range(1, length + 1):
        routes[f"/r/{n}"] = redirect_handler(f"/r/{n - 1}#frag", status=301 if n % 2 else 308)
    return routes


async def test_three_redirects_are_followed(make_peer: PeerFactory, client: RemoteClient) -> None:
    """A chain of max_redirects hops ends at the document; url is the final one."""
    peer = await make_peer(chain_routes(3))
    got = await client.get_json(peer.url("/r/3"))
    assert got.data == DOC
    assert got.url == peer.url("/r/0")
    assert [s.path for s in peer.seen] == ["/r/3", "/r/2", "/r/1", "/r/0"]


async def test_fourth_redirect_is_not_followed(
    make_peer: PeerFactory, client: RemoteClient
) -> None:
    """One redirect beyond max_redirects fails, and the next hop is never requested."""
    peer = await make_peer(chain_routes(4))
    with pytest.raises(FetchFailed, match="more than 3 redirects") as info:
        await client.get_json(peer.url("/r/4"))
    assert info.value.status == 301
    assert peer.hits("/r/0") == 0
    assert [s.path for s in peer.seen] == ["/r/4", "/r/3", "/r/2", "/r/1"]


async def test_zero_max_redirects_follows_none(make_peer: PeerFactory) -> None:
    """max_redirects=0 turns any redirect into a failure."""
    peer = await make_peer(chain_routes(1))
    settings = RemoteSettings(allow_private_addresses=True, max_redirects=0)
    async with RemoteClient(settings) as c:
        with pytest.raises(FetchFailed, match="more than 0 redirects"):
            await c.get_json(peer.url("/r/1"), signed=False)
    assert peer.hits("/r/0") == 0


async def test_redirect_to_another_host_is_resigned_for_it(make_peer: PeerFactory) -> None:
    """Each hop gets a fresh signature for its own URL and Host (a JSON document that may
    live elsewhere, as WebFinger's may; ActivityPub documents may not, see below)."""
    second = await make_peer({"/actor": json_handler(content_type="application/json")})
    target = second.url("/actor", host="localhost")
    first = await make_peer({"/old": redirect_handler(target, status=307)})
    signer = RecordingSigner()
    async with RemoteClient(DEV, signer=signer) as c:
        got = await c.get_json(first.url("/old"), allowed_types={"application/json"})

    assert got.url == target and got.data == DOC
    assert [(m, u) for m, u, _, _ in signer.calls] == [("GET", first.url("/old")), ("GET", target)]
    assert (
        first.seen[0]
        .headers["Signature"]
        .endswith(f'target="GET {first.url("/old")}",host="127.0.0.1:{first.port}"')
    )
    assert (
        second.seen[0]
        .headers["Signature"]
        .endswith(f'target="GET {target}",host="localhost:{second.port}"')
    )
    assert second.seen[0].headers["Host"] == f"localhost:{second.port}"


async def test_activitypub_document_redirected_to_another_origin_is_refused(
    make_peer: PeerFactory,
) -> None:
    """An ActivityPub document is read from its own origin only: a redirect to another
    host or port fails before that one is contacted, one within the origin is followed."""
    elsewhere = await make_peer({"/actor": json_handler()})
    first = await make_peer({"/other-host": redirect_handler(elsewhere.url("/actor",
                                                                            host="localhost")),
                             "/other-port": redirect_handler(elsewhere.url("/actor")),
                             "/same": redirect_handler("/moved"), "/moved": json_handler()})
    async with RemoteClient(DEV) as c:
        for path in ("/other-host", "/other-port"):
            with pytest.raises(FetchFailed, match="redirected to another origin"):
                await c.get_json(first.url(path), signed=False)
        got = await c.get_json(first.url("/same"), signed=False)
    assert (got.url, elsewhere.seen) == (first.url("/moved"), [])


async def test_redirect_to_blocked_host_is_refused_before_connecting(
    make_peer: PeerFactory,
) -> None:
    """The block list is consulted on every hop; the blocked peer sees nothing."""
    blocked = await make_peer({"/actor": json_handler()})
    first = await make_peer({"/old": redirect_handler(blocked.url("/actor", host="localhost"))})
    async with RemoteClient(DEV, is_blocked={"localhost"}.__contains__) as c:
        with pytest.raises(FetchRefused) as info:
            await c.get_json(first.url("/old"), signed=False)
    assert info.value.reason is RefusalReason.BLOCKED
    assert first.hits("/old") == 1
    assert blocked.seen == []


async def test_blocked_first_hop_is_refused(make_peer: PeerFactory) -> None:
    """A blocked host is refused before any byte is sent, GET or POST."""
    peer = await make_peer({"/doc": json_handler(), "/inbox": json_handler(status=202)})
    async with RemoteClient(DEV, is_blocked={"127.0.0.1"}.__contains__) as c:
        with pytest.raises(FetchRefused):
            await c.get_json(peer.url("/doc"), signed=False)
        with pytest.raises(FetchRefused):
            await c.post(peer.url("/inbox"), b"{}", sign=False)
    assert peer.seen == []


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("ftp://127.0.0.1/x", RefusalReason.SCHEME),
        ("http://0x7f.1/x", RefusalReason.NON_CANONICAL_IP),
    ],
)
async def test_redirect_target_is_rechecked(
    make_peer: PeerFactory, client: RemoteClient, location: str, reason: RefusalReason
) -> None:
    """A Location is held to the same rules as the first URL."""
    peer = await make_peer({"/old": redirect_handler(location)})
    with pytest.raises(FetchRefused) as info:
        await client.get_json(peer.url("/old"))
    assert info.value.reason is reason


async def test_redirect_without_location_fails(
    make_peer: PeerFactory, client: RemoteClient
) -> None:
    """A 3xx that says nowhere to go is a failure carrying its status."""

    async def bare(request: web.Request) -> web.Response:
        return web.Response(status=302)

    peer = await make_peer({"/old": bare})
    with pytest.raises(FetchFailed, match="without Location") as info:
        await client.get_json(peer.url("/old"))
    assert info.value.status == 302


# --- POST ----------------------------------------------------------------------------


def accepted(
    status: int = 202, body: bytes = b"", headers: dict[str, str] | None = None
) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers or {})

    return handle


async def test_signed_post_carries_body_and_signature(make_peer: PeerFactory) -> None:
    """The signer sees method, URL, headers and body; the peer gets all of it."""
    peer = await make_peer({"/inbox": accepted()})
    signer = RecordingSigner()
    body = b'{"type":"Create"}'
    async with RemoteClient(DEV, signer=signer) as c:
        result = await c.post(peer.url("/inbox"), body)

    assert result.status == 202
    host = f"127.0.0.1:{peer.port}"
    assert signer.calls == [
        ("POST", peer.url("/inbox"), {"Host": host, "User-Agent": UA, "Content-Type": AS2}, body)
    ]
    (seen,) = peer.seen
    assert seen.method == "POST" and seen.body == body
    assert seen.headers["Content-Type"] == AS2
    assert seen.headers["Signature"].endswith(f'target="POST {peer.url("/inbox")}",host="{host}"')


async def test_post_signer_override_and_extra_headers(make_peer: PeerFactory) -> None:
    """A per-call signer replaces the client's, and extra headers are signed and sent."""
    peer = await make_peer({"/inbox": accepted()})
    default, override = RecordingSigner("default"), RecordingSigner("override")
    async with RemoteClient(DEV, signer=default) as c:
        await c.post(
            peer.url("/inbox"),
            b"{}",
            content_type=LD_AS2,
            extra_headers={"X-Trace": "abc"},
            signer=override,
        )
    assert default.calls == []
    assert override.calls[0][2]["X-Trace"] == "abc"
    assert override.calls[0][2]["Content-Type"] == LD_AS2
    assert peer.seen[0].headers["Signature"].startswith('keyId="override"')
    assert peer.seen[0].headers["X-Trace"] == "abc"
    assert peer.seen[0].headers["Content-Type"] == LD_AS2


async def test_unsigned_post_has_no_signature(make_peer: PeerFactory) -> None:
    """sign=False skips signing entirely."""
    peer = await make_peer({"/inbox": accepted()})
    signer = RecordingSigner()
    async with RemoteClient(DEV, signer=signer) as c:
        await c.post(peer.url("/inbox"), b"{}", sign=False)
    assert signer.calls == [] and "Signature" not in peer.seen[0].headers


async def test_post_does_not_follow_307(make_peer: PeerFactory, client: RemoteClient) -> None:
    """A redirected delivery comes back as the result; the new location is never hit."""
    peer = await make_peer(
        {"/inbox": redirect_handler("/elsewhere", 307), "/elsewhere": accepted()}
    )
    result = await client.post(peer.url("/inbox"), b"{}")
    assert result.status == 307
    assert result.headers["Location"] == "/elsewhere"
    assert peer.hits("/inbox") == 1 and peer.hits("/elsewhere") == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500, 502])
async def test_post_returns_error_statuses(
    make_peer: PeerFactory, client: RemoteClient, status: int
) -> None:
    """HTTP errors are results for the delivery layer to classify, not exceptions."""
    peer = await make_peer({"/inbox": accepted(status, b"nope")})
    result = await client.post(peer.url("/inbox"), b"{}")
    assert (result.status, result.body_excerpt) == (status, "nope")


async def test_post_exposes_retry_after(make_peer: PeerFactory, client: RemoteClient) -> None:
    """A 429's Retry-After reaches the caller."""
    peer = await make_peer({"/inbox": accepted(429, b"slow down", {"Retry-After": "120"})})
    result = await client.post(peer.url("/inbox"), b"{}")
    assert result.status == 429 and result.retry_after == "120"
    assert result.headers["retry-after"] == "120"


async def test_post_answer_is_excerpted_and_capped(
    make_peer: PeerFactory, client: RemoteClient
) -> None:
    """Only the first KiB is kept, and a huge answer is cut off without an error."""
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def chatty(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=400)
        await resp.prepare(request)
        try:
            for _ in range(4096):
                await resp.write(b"e" * 16384)
        except (ConnectionError, asyncio.CancelledError):
            # aiohttp cancels the handler, or the write fails, once the peer is gone
            done.set_result("client hung up")
            raise
        done.set_result("sent everything")
        return resp

    peer = await make_peer({"/small": accepted(500, "é".encode() * 3000), "/huge": chatty})
    small = await client.post(peer.url("/small"), b"{}")
    assert small.body_excerpt == "é" * 512
    huge = await client.post(peer.url("/huge"), b"{}")
    assert huge.status == 400 and huge.body_excerpt == "e" * 1024
    assert await asyncio.wait_for(done, timeout=10) == "client hung up"


# --- timeouts and connection errors -----------------------------------------------------


def stalling(entered: asyncio.Event, release: asyncio.Event) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(status=204)

    return handle


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_total_timeout_fails_without_status(make_peer: PeerFactory, method: str) -> None:
    """A peer that never answers is given up on after total_timeout."""
    entered, release = asyncio.Event(), asyncio.Event()
    peer = await make_peer({"/slow": stalling(entered, release)})
    settings = RemoteSettings(allow_private_addresses=True, total_timeout=0.3)
    loop = asyncio.get_running_loop()
    try:
        async with RemoteClient(settings) as c:
            started = loop.time()
            with pytest.raises(FetchFailed, match=r"timed out after 0\.3 s") as info:
                call = (
                    c.get_json(peer.url("/slow"), signed=False)
                    if method == "GET"
                    else c.post(peer.url("/slow"), b"{}", sign=False)
                )
                # The outer bound only turns a regression into a failure instead of a hang.
                await asyncio.wait_for(call, timeout=5)
            elapsed = loop.time() - started
        assert info.value.status is None
        assert entered.is_set()
        assert 0.25 < elapsed < 3
    finally:
        release.set()  # let the handler finish so the server shuts down promptly


async def test_connection_refused_fails_without_status(closed_port: int) -> None:
    """Nothing listening: FetchFailed with no status, for GET and POST."""
    async with RemoteClient(DEV) as c:
        with pytest.raises(FetchFailed, match="cannot connect") as get_info:
            await c.get_json(f"http://127.0.0.1:{closed_port}/", signed=False)
        with pytest.raises(FetchFailed, match="cannot connect") as post_info:
            await c.post(f"http://127.0.0.1:{closed_port}/inbox", b"{}", sign=False)
    assert get_info.value.status is None and post_info.value.status is None


# --- SSRF guard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason", "match"),
    [
        ("http://127.0.0.1:{port}/", RefusalReason.SCHEME, "scheme 'http'"),
        ("http://localhost:{port}/", RefusalReason.SCHEME, "scheme 'http'"),
        ("https://127.0.0.1:{port}/", RefusalReason.ADDRESS, "127.0.0.0/8"),
        ("https://[::ffff:127.0.0.1]:{port}/", RefusalReason.ADDRESS, "IPv4-mapped"),
        # A special-use name is refused before it is looked up (RFC 6761).
        ("https://localhost:{port}/", RefusalReason.SPECIAL_USE, "this machine"),
        ("https://app.localhost:{port}/", RefusalReason.SPECIAL_USE, "this machine"),
        ("https://2130706433:{port}/", RefusalReason.NON_CANONICAL_IP, "127.0.0.1"),
        ("https://0x7f.1:{port}/", RefusalReason.NON_CANONICAL_IP, "127.0.0.1"),
        ("https://127.1:{port}/", RefusalReason.NON_CANONICAL_IP, "127.0.0.1"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_guard_refuses_local_targets_without_connecting(
    listener: Listener, template: str, reason: RefusalReason, match: str, method: str
) -> None:
    """In production mode loopback is unreachable by any spelling; no connection is made."""
    url = template.format(port=listener.port)
    async with RemoteClient(PROD, signer=RecordingSigner()) as c:
        with pytest.raises(FetchRefused, match=match) as info:
            if method == "GET":
                await c.get_json(url)
            else:
                await c.post(url, b"{}")
    assert info.value.reason is reason
    assert listener.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_listener_does_see_connections_when_private_allowed(
    listener: Listener, host: str
) -> None:
    """Control for the test above: the same listener counts a connection that happens."""
    async with RemoteClient(DEV) as c:
        # POST, because aiohttp retries an idempotent GET once when the server hangs up.
        with pytest.raises(FetchFailed):
            await c.post(f"http://{host}:{listener.port}/inbox", b"{}", sign=False)
    assert listener.connections == 1


async def test_localhost_is_reachable_when_private_allowed(make_peer: PeerFactory) -> None:
    """allow_private_addresses lets a name resolving to loopback through the resolver."""
    peer = await make_peer({"/doc": json_handler()})
    async with RemoteClient(DEV) as c:
        got = await c.get_json(peer.url("/doc", host="localhost"), signed=False)
    assert got.data == DOC and peer.hits("/doc") == 1


class RecordingResolver(AbstractResolver):
    """Delegates to the system resolver and records every name it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return await self._inner.resolve(host, port, family)

    async def close(self) -> None:
        await self._inner.close()


async def test_aiohttp_does_not_resolve_ip_literals(make_peer: PeerFactory) -> None:
    """Why check_url must judge IP literals itself: aiohttp never shows them to a resolver."""
    peer = await make_peer({"/doc": json_handler()})
    resolver = RecordingResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(peer.url("/doc")) as resp:
            assert resp.status == 200
        assert resolver.asked == []
        async with session.get(peer.url("/doc", host="localhost")) as resp:
            assert resp.status == 200
        assert resolver.asked == ["localhost"]
    await resolver.close()


class ScriptedResolver(AbstractResolver):
    """Answers from a list of address sets, one per call: a DNS server that rebinds."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self._answers.pop(0)
        ]

    async def close(self) -> None:
        pass


async def test_guarded_resolver_checks_every_answer() -> None:
    """A name that rebinds to loopback on the next look-up is refused on that look-up."""
    guarded = GuardedResolver(
        ScriptedResolver(["93.184.216.34"], ["127.0.0.1"]), allow_private=False
    )
    first = await guarded.resolve("rebind.example", 443)
    assert [r["host"] for r in first] == ["93.184.216.34"]
    with pytest.raises(AddressRefused, match=r"rebind\.example .*127\.0\.0\.1"):
        await guarded.resolve("rebind.example", 443)


async def test_guarded_resolver_drops_forbidden_addresses_from_a_mixed_answer() -> None:
    """Only the allowed addresses of a mixed answer reach the connector."""
    answer = ["10.0.0.1", "2606:4700::1", "::1", "93.184.216.34", "169.254.169.254"]
    guarded = GuardedResolver(ScriptedResolver(answer), allow_private=False)
    got = await guarded.resolve("mixed.example", 443)
    assert [r["host"] for r in got] == ["2606:4700::1", "93.184.216.34"]


async def test_guarded_resolver_allows_everything_in_dev_mode() -> None:
    """allow_private passes loopback and private answers through."""
    guarded = GuardedResolver(ScriptedResolver(["127.0.0.1", "10.0.0.1"]), allow_private=True)
    assert [r["host"] for r in await guarded.resolve("dev.test", 80)] == ["127.0.0.1", "10.0.0.1"]
