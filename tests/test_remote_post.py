"""RemoteClient.post, the delivery path, against real sockets on 127.0.0.1: signing in a
thread, kept-alive connections, chunked and cut-short answers, malformed answers, headers
that could split a request, and requests to one server written in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from fedcomments.remote import FetchFailed, RemoteClient, RemoteSettings
from tests.helpers.peers import until

DEV = RemoteSettings(allow_private_addresses=True, total_timeout=5.0, user_agent="test")

#: (connection number, request number on that connection) -> bytes to answer, or None to
#: hang up without answering.
Script = Callable[[int, int], bytes | None]


def answer(status: int, body: bytes = b"", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class RawPeer:
    """A bare HTTP/1.1 server on 127.0.0.1 that answers from a script and records requests."""

    script: Script
    #: (connection, request) pairs after whose answer the server hangs up.
    hang_up: set[tuple[int, int]] = field(default_factory=set)
    connections: int = 0
    requests: list[tuple[int, int, bytes, bytes]] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/inbox"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number, self.connections = self.connections, self.connections + 1
        try:
            for n in range(100):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                self.requests.append((number, n, head, body))
                reply = self.script(number, n)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if (number, n) in self.hang_up:
                    return
        finally:
            writer.close()


@pytest.fixture
async def raw_peer() -> AsyncIterator[Callable[[Script], asyncio.Future[RawPeer]]]:
    started: list[RawPeer] = []

    async def start(script: Script) -> RawPeer:
        peer = RawPeer(script)
        peer.server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
        started.append(peer)
        return peer

    yield start  # type: ignore[misc]
    for peer in started:
        assert peer.server is not None
        peer.server.close()
        await peer.server.wait_closed()


async def test_post_is_signed_in_a_signing_thread(raw_peer: Callable[..., asyncio.Future[RawPeer]]
                                                  ) -> None:
    """Given a signer, when a delivery is posted, then the signature is made off the event
    loop's thread and its headers arrive with the body."""
    peer = await raw_peer(lambda c, n: answer(202))
    threads: list[threading.Thread] = []

    def signer(method: str, url: str, headers: dict[str, str], body: bytes | None
               ) -> dict[str, str]:
        threads.append(threading.current_thread())
        return {"Signature": f'keyId="k",target="{method} {url}"'}

    async with RemoteClient(DEV, signer=signer) as client:
        result = await client.post(peer.url, b'{"type":"Create"}')
    assert result.status == 202
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    [(_, _, head, body)] = peer.requests
    assert f'Signature: keyId="k",target="POST {peer.url}"'.encode() in head
    assert head.startswith(b"POST /inbox HTTP/1.1\r\n") and body == b'{"type":"Create"}'


async def test_second_post_reuses_the_kept_alive_connection(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a server that keeps connections alive, when two deliveries go to it one after
    the other, then both travel on one connection."""
    peer = await raw_peer(lambda c, n: answer(202))
    async with RemoteClient(DEV) as client:
        first = await client.post(peer.url, b"{}", sign=False)
        second = await client.post(peer.url, b"[]", sign=False)
    assert (first.status, second.status) == (202, 202)
    assert peer.connections == 1
    assert [(c, n, body) for c, n, _, body in peer.requests] == [(0, 0, b"{}"), (0, 1, b"[]")]


async def test_connection_closed_as_it_was_reused_is_retried_once_on_a_new_one(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a server that hangs up on the second request of a connection without a byte of
    answer (its keep-alive ran out), when a second delivery reuses that connection, then
    it is sent again on a fresh connection and answered."""
    peer = await raw_peer(lambda c, n: None if n == 1 else answer(202 if c == 0 else 201))
    async with RemoteClient(DEV) as client:
        assert (await client.post(peer.url, b"{}", sign=False)).status == 202
        assert (await client.post(peer.url, b"{}", sign=False)).status == 201
    assert peer.connections == 2
    assert [(c, n) for c, n, _, _ in peer.requests] == [(0, 0), (0, 1), (1, 0)]


async def test_fresh_connection_hung_up_on_is_not_retried(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a server that hangs up without answering, when a delivery is posted on a new
    connection, then it fails without a status and is sent only once."""
    peer = await raw_peer(lambda c, n: None)
    async with RemoteClient(DEV) as client:
        with pytest.raises(FetchFailed) as info:
            await client.post(peer.url, b"{}", sign=False)
    assert info.value.status is None
    assert len(peer.requests) == 1


async def test_chunked_answer_is_read_and_the_connection_kept(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given answers with a chunked body and a trailer, when two deliveries are posted,
    then each excerpt is the joined chunks and both use one connection."""
    chunked = (b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    peer = await raw_peer(lambda c, n: chunked)
    async with RemoteClient(DEV) as client:
        results = [await client.post(peer.url, b"{}", sign=False) for _ in range(2)]
    assert [(r.status, r.body_excerpt) for r in results] == [(400, "hello world")] * 2
    assert peer.connections == 1


async def test_interim_answers_are_skipped(raw_peer: Callable[..., asyncio.Future[RawPeer]]
                                           ) -> None:
    """Given a server that sends 100 Continue and 103 Early Hints first, when a delivery is
    posted, then the final 202 is the result."""
    peer = await raw_peer(lambda c, n: b"HTTP/1.1 100 Continue\r\n\r\n"
                          b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + answer(202))
    async with RemoteClient(DEV) as client:
        assert (await client.post(peer.url, b"{}", sign=False)).status == 202


async def test_answer_cut_short_keeps_status_and_what_arrived(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a server that announces 100 body bytes, sends 7 and hangs up, when a delivery
    is posted, then the result has its status and the 7 bytes, and the next delivery
    opens a new connection."""
    cut = b"HTTP/1.1 503 Unavailable\r\nContent-Length: 100\r\n\r\npartial"

    def script(c: int, n: int) -> bytes | None:
        return cut if c == 0 else answer(202)

    peer = await raw_peer(script)
    peer.hang_up.add((0, 0))
    async with RemoteClient(DEV) as client:
        result = await client.post(peer.url, b"{}", sign=False)
        assert (result.status, result.body_excerpt) == (503, "partial")
        assert (await client.post(peer.url, b"{}", sign=False)).status == 202
    assert peer.connections == 2


async def test_answer_over_the_cap_drops_the_connection(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a 202 announcing a 1 MiB body, when a delivery is posted, then the result is
    read up to the cap, and the connection is not used again."""
    big = answer(202, b"a" * (1 << 20))
    peer = await raw_peer(lambda c, n: big)
    async with RemoteClient(DEV) as client:
        result = await client.post(peer.url, b"{}", sign=False)
        again = await client.post(peer.url, b"{}", sign=False)
    assert (result.status, result.body_excerpt) == (202, "a" * 1024)
    assert again.status == 202 and peer.connections == 2


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                   b"HTTP/1.1 101 Switching Protocols\r\n\r\n"])
async def test_malformed_answer_fails_without_status(
        raw_peer: Callable[..., asyncio.Future[RawPeer]], reply: bytes) -> None:
    """Given a server answering bytes that are not an HTTP/1.1 answer, when a delivery is
    posted, then it fails with no status and says the answer was malformed."""
    peer = await raw_peer(lambda c, n: reply)
    async with RemoteClient(DEV) as client:
        with pytest.raises(FetchFailed, match="malformed answer") as info:
            await client.post(peer.url, b"{}", sign=False)
    assert info.value.status is None


@pytest.mark.parametrize("headers", [{"X-Trace": "a\r\nX-Evil: 1"}, {"X Bad": "1"},
                                     {"X-Nul": "a\x00b"}])
async def test_header_that_could_split_the_request_is_refused_before_connecting(
        raw_peer: Callable[..., asyncio.Future[RawPeer]], headers: dict[str, str]) -> None:
    """Given a header name or value carrying CR, LF, NUL or a space in the name, when a
    delivery is posted with it, then it is refused and no connection is made."""
    peer = await raw_peer(lambda c, n: answer(202))
    async with RemoteClient(DEV) as client:
        with pytest.raises(ValueError, match="cannot be sent"):
            await client.post(peer.url, b"{}", sign=False, extra_headers=headers)
    assert peer.connections == 0


async def test_requests_to_one_server_are_written_in_the_order_they_were_made(
        raw_peer: Callable[..., asyncio.Future[RawPeer]]) -> None:
    """Given a first delivery whose signature is slow and a second, unsigned one to the same
    server, when both are posted at once, then the second connects but writes nothing
    until the first is written: an Update never overtakes its Create."""
    peer = await raw_peer(lambda c, n: answer(202))
    release = threading.Event()

    def slow_signer(method: str, url: str, headers: dict[str, str], body: bytes | None
                    ) -> dict[str, str]:
        release.wait(10)
        return {"Signature": "first"}

    async with RemoteClient(DEV, signer=slow_signer) as client:
        first = asyncio.create_task(client.post(peer.url, b"first"))
        second = asyncio.create_task(client.post(peer.url, b"second", sign=False))
        try:
            await until(lambda: peer.connections == 1)
            with pytest.raises(TimeoutError):
                await until(lambda: bool(peer.requests), bound=0.3)
        finally:
            release.set()
        results = await asyncio.gather(first, second)
    assert [r.status for r in results] == [202, 202]
    assert sorted(body for _, _, _, body in peer.requests) == [b"first", b"second"]
