"""HTTP/1.1 on a raw connection for deliveries: the request bytes out, the answer parsed in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import cast

from multidict import CIMultiDict
from yarl import URL

#: The largest status line plus headers read from an answer.
HEAD_CAP = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_UNSAFE_VALUE = re.compile(r"[\x00\r\n]")
_HEX = re.compile(rb"[0-9A-Fa-f]+\Z")
#: Framing is ours to write: a caller's values for these are dropped.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


class BadAnswer(Exception):
    """The peer's bytes are not an HTTP/1.1 answer we can read."""


class Wire(asyncio.Protocol):
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


def request_bytes(method: str, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request as sent; a header that could split the request is refused."""
    lines = [f"{method} {url.raw_path_qs} HTTP/1.1"]
    for name, value in headers.items():
        if not _TOKEN.match(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent as given")
        if name.lower() not in _FRAMING:
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_until(wire: Wire, mark: bytes, cap: int) -> bytes:
    while True:
        end = wire.buffer.find(mark)
        if end >= 0:
            found = bytes(wire.buffer[:end])
            del wire.buffer[:end + len(mark)]
            return found
        if len(wire.buffer) > cap:
            raise BadAnswer(f"no end of line within {cap} bytes")
        await wire.more()


async def read_head(wire: Wire) -> tuple[int, CIMultiDict[str], bool]:
    """Status, headers, and whether the connection may be kept (1xx answers skipped)."""
    while True:
        lines = (await _read_until(wire, b"\r\n\r\n", HEAD_CAP)).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (
                len(code) == 3 and code.isdigit() and rest[3:4] in (b"", b" ")):
            raise BadAnswer(f"status line {lines[0][:80]!r}")
        status = int(code)
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.match(name.decode("latin-1")):
                raise BadAnswer(f"header line {line[:80]!r}")
            headers.add(name.decode("latin-1"), value.strip(b" \t").decode("latin-1"))
        if status == 101:
            raise BadAnswer("switching protocols, which was never asked for")
        if status >= 200:
            keep = version == b"HTTP/1.1" and "close" not in headers.get(
                "Connection", "").lower()
            return status, headers, keep


async def read_body(wire: Wire, status: int, headers: Mapping[str, str],
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
        raise BadAnswer(f"Content-Length {length[:40]!r}")
    size = int(length)
    while len(wire.buffer) < size:
        if len(wire.buffer) > cap:
            return bytes(wire.buffer[:cap]), False
        await wire.more()
    body = bytes(wire.buffer[:size])
    del wire.buffer[:size]
    return body[:cap], size <= cap


async def _read_chunked(wire: Wire, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_text = (await _read_until(wire, b"\r\n", 1024)).split(b";", 1)[0].strip()
        if not _HEX.match(size_text):
            raise BadAnswer(f"chunk size {size_text[:40]!r}")
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
            raise BadAnswer("chunk without its line end")
        body += wire.buffer[:size]
        del wire.buffer[:size + 2]
        if len(body) > cap:
            return bytes(body[:cap]), False
