"""Peers for notification tests, all real servers on loopback: an SMTP server (aiosmtpd)
that keeps what it receives, a webhook receiver, and an Akismet-compatible spam service."""

from __future__ import annotations

import asyncio
import email
import re
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.helpers.fediverse import SHUTDOWN_TIMEOUT
from tests.helpers.peers import until

_URL = re.compile(r"https?://[^\s>]+")


@dataclass
class Mail:
    """One message as the SMTP server received it."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]

    def links(self, path: str) -> list[str]:
        """Every URL in the text whose path starts with `path`."""
        return [u for u in _URL.findall(self.text) if f"/{path.strip('/')}/" in u]


@dataclass
class Mailbox:
    """An SMTP server on 127.0.0.1 in the test's own event loop."""

    received: list[Mail] = field(default_factory=list)
    #: Answer every RCPT with this (e.g. "550 no such user") instead of accepting.
    refuse: str | None = None
    server: asyncio.Server | None = None
    port: int = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    async def start(self, sock: socket.socket | None = None) -> Mailbox:
        """Listen on `sock` (a socket bound before, so a test can name the port of a
        server that is down at first) or on a fresh port."""
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return SMTP(self, hostname="mail.test", decode_data=False)

        if sock is None:
            self.server = await loop.create_server(protocol, "127.0.0.1", 0)
        else:
            self.server = await loop.create_server(protocol, sock=sock)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def wait_for(self, count: int, bound: float = 10.0) -> list[Mail]:
        """Wait until at least `count` mails arrived; returns all of them."""
        try:
            await until(lambda: len(self.received) >= count, bound)
        except TimeoutError:
            raise AssertionError(f"{len(self.received)} mails arrived, not {count}: "
                                 f"{[m.subject for m in self.received]}") from None
        return self.received

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.received if address in m.recipients]


def notify_settings(mailbox: Mailbox, **extra: Any) -> dict[str, Any]:
    """The [notify] section for a fedcomments instance that mails through `mailbox`."""
    return {"smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "to": "owner@blog.test",
            "from": "comments@blog.test", **extra}


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST; answers `status` (a test may change it)."""

    received: list[Hook] = field(default_factory=list)
    status: int = 204
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hook"

    async def start(self) -> WebhookReceiver:
        async def hook(request: web.Request) -> web.Response:
            self.received.append(Hook(dict(request.headers), await request.read()))
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(shutdown_timeout=SHUTDOWN_TIMEOUT)
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def events(self) -> list[str]:
        return [h.headers.get("X-Fedcomments-Event", "") for h in self.received]


@dataclass
class FakeAkismet:
    """An Akismet-compatible service: "spam" in the text means spam. `hold` makes
    comment-check wait until released; `status` other than 200 is a broken service."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    status: int = 200
    hold: asyncio.Event | None = None
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> FakeAkismet:
        async def call(request: web.Request) -> web.Response:
            name = request.match_info["call"]
            form = {k: str(v) for k, v in (await request.post()).items()}
            self.calls.append((name, form))
            if self.hold is not None and name == "comment-check":
                await self.hold.wait()
            if self.status != 200:
                return web.Response(status=self.status, text="broken")
            if name == "comment-check":
                spam = "spam" in form.get("comment_content", "").lower()
                headers = {"X-akismet-pro-tip": "discard"} if spam else {}
                return web.Response(text="true" if spam else "false", headers=headers)
            return web.Response(text="Thanks for making the web a better place.")

        app = web.Application()
        app.router.add_post("/1.1/{call}", call)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(shutdown_timeout=SHUTDOWN_TIMEOUT)
        return self

    async def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self.server is not None:
            await self.server.close()

    def named(self, name: str) -> list[dict[str, str]]:
        return [form for call, form in self.calls if call == name]
