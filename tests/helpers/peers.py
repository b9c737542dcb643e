"""Remote servers for delivery tests: real aiohttp servers on loopback addresses that host
actors, fetch our key, verify our signatures with independent implementations, record what
arrived and answer the way each test scripts them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedcomments.ap import keys
from tests.helpers.fediverse import PUBLIC, SHUTDOWN_TIMEOUT, pooled_rsa_keypair
from tests.helpers.independent import cavage_sign, cavage_verify, rfc9421_verify

AS2 = "application/activity+json"
_KEY_ID = re.compile(r'keyid="([^"]+)"', re.IGNORECASE)


@dataclass
class Arrival:
    """One POST to an inbox of the peer, with the independent verifier's verdict."""

    path: str
    headers: dict[str, str]
    body: bytes
    scheme: str
    verified: bool
    loop_time: float
    answered: int = 0

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return str(self.json().get("type"))


@dataclass
class PeerActor:
    peer: Peer
    username: str
    keypair: keys.KeyPair

    @property
    def id(self) -> str:
        return f"{self.peer.url}/users/{self.username}"

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    @property
    def followers(self) -> str:
        return f"{self.id}/followers"

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.username.title(),
            "url": f"{self.peer.url}/@{self.username}",
            "inbox": self.inbox,
            "outbox": f"{self.id}/outbox",
            "followers": self.followers,
            "publicKey": {"id": self.key_id, "owner": self.id,
                          "publicKeyPem": self.keypair.public_pem},
        }
        if self.peer.shared_inbox:
            doc["endpoints"] = {"sharedInbox": f"{self.peer.url}/inbox"}
        return doc


@dataclass
class Peer:
    """A remote server at http://ADDRESS:PORT.

    `plan` holds (status, headers) answers used in order, then `default_status`. With
    `hold` set to an unset Event, inbox requests are recorded and then wait for it.
    `accept_schemes` limits the signature schemes it accepts (401 otherwise).
    """

    address: str = "127.0.0.1"
    shared_inbox: bool = True
    known_keys: dict[str, str] = field(default_factory=dict)
    plan: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default_status: int = 202
    hold: asyncio.Event | None = None
    accept_schemes: tuple[str, ...] = ("cavage", "rfc9421")
    on_arrival: Callable[[Arrival], None] | None = None
    actors: dict[str, PeerActor] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    waiting: int = 0
    #: Loop times at which held requests ended (answered, or dropped by the client).
    released: list[float] = field(default_factory=list)
    server: TestServer | None = None
    _session: aiohttp.ClientSession | None = None
    _ids: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.address}:{self.server.port}"

    @property
    def shared_inbox_url(self) -> str:
        return f"{self.url}/inbox"

    async def start(self) -> Peer:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        self.server = TestServer(app, host=self.address)
        # A remote going away does not wait for our idle keep-alive connections: with
        # aiohttp's default (60 s) a delivery in flight at the end of a test held its
        # teardown until our client's 30 s timeout.
        await self.server.start_server(shutdown_timeout=SHUTDOWN_TIMEOUT)
        self._session = aiohttp.ClientSession()
        return self

    async def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._session is not None:
            await self._session.close()
        if self.server is not None:
            await self.server.close()

    def actor(self, username: str = "alice") -> PeerActor:
        actor = PeerActor(self, username, pooled_rsa_keypair())
        self.actors[username] = actor
        return actor

    def new_id(self, kind: str) -> str:
        self._ids += 1
        return f"{self.url}/{kind}/{self._ids}"

    def received(self, type_: str | None = None) -> list[Arrival]:
        return [a for a in self.arrivals if type_ is None or a.type == type_]

    # --- sending, like a fediverse server would ------------------------------------------

    async def send(self, actor: PeerActor, inbox_url: str, doc: dict[str, Any], now: datetime
                   ) -> int:
        body = json.dumps(doc).encode()
        base = {"Content-Type": AS2}
        signed = cavage_sign("POST", inbox_url, dict(base), body, actor.key_id,
                             actor.keypair.private_pem, now)
        assert self._session is not None
        async with self._session.post(inbox_url, data=body, headers={**base, **signed}) as resp:
            await resp.read()
            return resp.status

    def follow(self, actor: PeerActor, blog_actor: str) -> dict[str, Any]:
        return {"@context": "https://www.w3.org/ns/activitystreams",
                "id": self.new_id("follows"), "type": "Follow", "actor": actor.id,
                "object": blog_actor}

    def reply(self, actor: PeerActor, in_reply_to: str, *, content: str = "<p>Nice post!</p>",
              to: list[str] | None = None, cc: list[str] | None = None,
              mentions: list[tuple[str, str]] = ()) -> dict[str, Any]:
        """Create{Note}; public unless `to`/`cc` say otherwise; mentions are (href, name)."""
        note = {
            "id": self.new_id("notes"), "type": "Note", "attributedTo": actor.id,
            "inReplyTo": in_reply_to, "content": content, "published": "2024-01-01T00:00:00Z",
            "to": to if to is not None else [PUBLIC],
            "cc": cc if cc is not None else [actor.followers],
            "tag": [{"type": "Mention", "href": h, "name": n} for h, n in mentions],
        }
        return {"@context": "https://www.w3.org/ns/activitystreams",
                "id": self.new_id("creates"), "type": "Create", "actor": actor.id,
                "to": note["to"], "cc": note["cc"], "object": note}

    # --- receiving -----------------------------------------------------------------------

    async def _actor(self, request: web.Request) -> web.Response:
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=404)
        return web.json_response(actor.document(), content_type=AS2)

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        scheme, verified = await self._verify(request, headers, body)
        arrival = Arrival(request.path, headers, body, scheme, verified,
                          asyncio.get_running_loop().time())
        self.arrivals.append(arrival)
        if self.on_arrival is not None:
            self.on_arrival(arrival)
        if self.hold is not None and not self.hold.is_set():
            self.waiting += 1
            try:
                await self.hold.wait()
            finally:
                self.waiting -= 1
                self.released.append(asyncio.get_running_loop().time())
        if scheme not in self.accept_schemes or not verified:
            arrival.answered = 401
            return web.Response(status=401, text="signature not accepted")
        status, extra = self.plan.pop(0) if self.plan else (self.default_status, {})
        arrival.answered = status
        return web.Response(status=status, headers=extra, text="")

    async def _verify(self, request: web.Request, headers: dict[str, str], body: bytes
                      ) -> tuple[str, bool]:
        """Verify with the independent libraries, fetching the key like a peer would."""
        if "Signature-Input" in headers:
            match = _KEY_ID.search(headers["Signature-Input"])
            key_id = match.group(1) if match else ""
            pem = await self._key(key_id)
            url = f"{self.url}{request.path_qs}"
            try:
                ok = bool(pem) and rfc9421_verify(headers, pem, request.method, url, body, key_id)
            except Exception:  # the library raises on any mismatch
                ok = False
            return "rfc9421", ok
        if "Signature" in headers:
            match = _KEY_ID.search(headers["Signature"])
            key_id = match.group(1) if match else ""
            pem = await self._key(key_id)
            digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            try:
                ok = (bool(pem) and headers.get("Digest") == digest
                      and cavage_verify(headers, pem, request.method, request.path_qs))
            except Exception:
                ok = False
            return "cavage", ok
        return "none", False

    async def _key(self, key_id: str) -> str:
        if key_id in self.known_keys:
            return self.known_keys[key_id]
        assert self._session is not None
        try:
            async with self._session.get(key_id.split("#", 1)[0],
                                         headers={"Accept": AS2}) as resp:
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError):
            return ""
        pem = str(doc.get("publicKey", {}).get("publicKeyPem", ""))
        self.known_keys[key_id] = pem
        return pem


async def until(condition: Callable[[], bool], bound: float = 5.0) -> None:
    """Poll a condition on the event loop, within `bound` seconds (TimeoutError otherwise)."""
    async with asyncio.timeout(bound):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def until_true(condition: Callable[[], Awaitable[bool]], bound: float = 5.0) -> None:
    """`until` for a condition that has to query something."""
    async with asyncio.timeout(bound):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


@asynccontextmanager
async def peers(*addresses: str, **options: Any) -> AsyncIterator[list[Peer]]:
    started = [await Peer(address=a, **options).start() for a in addresses]
    try:
        yield started
    finally:
        for peer in started:
            await peer.close()
