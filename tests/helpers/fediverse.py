"""A fake fediverse instance: a real aiohttp server on 127.0.0.1 serving actors and notes,
signing what it sends and recording what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import idna
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from httpsig import HeaderVerifier
from yarl import URL

from fedcomments.ap import httpsig, keys
from tests.helpers.independent import cavage_sign, rfc9421_sign

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
#: Seconds a fake server waits for connections still open when it closes.
SHUTDOWN_TIMEOUT = 1.0
# Mastodon's real @context for activities (trimmed of terms we never read is NOT done:
# this is what it sends).
MASTODON_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    {
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
        "votersCount": "toot:votersCount",
        "Hashtag": "as:Hashtag",
        "Emoji": "toot:Emoji",
    },
]
ACTOR_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
        "Hashtag": "as:Hashtag",
    },
]

Signer = Callable[[str, str, dict[str, str], bytes | None, str, str, datetime], dict[str, str]]


def our_cavage(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    key_id: str,
    pem: str,
    now: datetime,
) -> dict[str, str]:
    return httpsig.sign_request_cavage(
        method, url, headers, body, key_id=key_id, private_key_pem=pem, now=now
    )


def our_rfc9421(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    key_id: str,
    pem: str,
    now: datetime,
) -> dict[str, str]:
    return httpsig.sign_request_rfc9421(
        method, url, headers, body, key_id=key_id, private_key_pem=pem, now=now
    )


#: How an actor publishes its signing key:
#: "mastodon" ACTOR#main-key in publicKey (RSA, or Ed25519 as publicKeyPem);
#: "gotosocial" keyId ACTOR/main-key, served as a stub actor whose id is the actor's;
#: "standalone" keyId /keys/NAME, a CryptographicKey document naming its owner;
#: "multikey" Fedify's FEP-521a Ed25519 Multikey in assertionMethod, keyId ACTOR#ed25519-key.
KEY_STYLES = ("mastodon", "gotosocial", "standalone", "multikey")


@dataclass
class FakeActor:
    instance: FakeInstance
    username: str
    keypair: keys.KeyPair
    name: str = ""
    key_style: str = "mastodon"
    #: Serve the document with this id instead of the actor's own (a lying server).
    served_id: str | None = None
    #: Extra properties merged into the served document.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.instance.url}/users/{self.username}"

    @property
    def key_id(self) -> str:
        return {
            "mastodon": f"{self.id}#main-key",
            "gotosocial": f"{self.id}/main-key",
            "standalone": f"{self.instance.url}/keys/{self.username}",
            "multikey": f"{self.id}#ed25519-key",
        }[self.key_style]

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    @property
    def followers(self) -> str:
        return f"{self.id}/followers"

    def rotate(self) -> keys.KeyPair:
        """A new key pair under the same keyId (what a key rotation looks like)."""
        ed = keys.private_key_kind(self.keypair.private_pem) == "ed25519"
        self.keypair = keys.generate_ed25519_keypair() if ed else keys.generate_rsa_keypair()
        return self.keypair

    def public_key(self) -> dict[str, Any]:
        return {"id": self.key_id, "owner": self.id, "publicKeyPem": self.keypair.public_pem}

    def key_document(self) -> dict[str, Any] | None:
        """What the keyId URL serves when it is not the actor itself."""
        if self.key_style == "gotosocial":
            return {"@context": ["https://w3id.org/security/v1",
                                 "https://www.w3.org/ns/activitystreams"],
                    "id": self.served_id or self.id, "type": "Person",
                    "preferredUsername": self.username, "publicKey": self.public_key()}
        if self.key_style == "standalone":
            return {"@context": "https://w3id.org/security/v1", "type": "CryptographicKey",
                    **self.public_key()}
        return None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@context": ACTOR_CONTEXT,
            "id": self.served_id or self.id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.name or self.username.title(),
            "summary": "<p>Fake actor</p>",
            "url": f"{self.instance.url}/@{self.username}",
            "inbox": self.inbox,
            "outbox": f"{self.id}/outbox",
            "followers": self.followers,
            "following": f"{self.id}/following",
            "endpoints": {"sharedInbox": f"{self.instance.url}/inbox"},
            "icon": {
                "type": "Image",
                "mediaType": "image/png",
                "url": f"{self.instance.url}/avatars/{self.username}.png",
            },
            "manuallyApprovesFollowers": False,
        }
        if self.key_style == "multikey":
            doc["@context"] = [*ACTOR_CONTEXT, "https://w3id.org/security/multikey/v1"]
            doc["assertionMethod"] = [{
                "id": self.key_id, "type": "Multikey", "controller": self.id,
                "publicKeyMultibase": keys.multibase_from_public_pem(self.keypair.public_pem),
            }]
        else:
            doc["publicKey"] = self.public_key()
        doc.update(self.extra)
        return doc


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Gate:
    """Holds GETs of one path until released; `arrived` is set when one comes in."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeInstance:
    """One remote server: actors at /users/NAME, objects at /objects/N, inboxes recording.

    Every request is recorded (`requests`: method and path; `hits`: paths of GETs), so a
    test can assert that something was, or was not, fetched.
    """

    server: TestServer | None = None
    actors: dict[str, FakeActor] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Any other document, by path: (JSON document, Content-Type).
    documents: dict[str, tuple[Any, str]] = field(default_factory=dict)
    #: Raw files (images), by path: (bytes, Content-Type).
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: GETs of /objects/N with their headers (our signed fetches, for verifiers to check).
    fetched: list[Received] = field(default_factory=list)
    inbox_status: int = 202
    #: Paths answered 410 Gone (deleted accounts and notes).
    gone: set[str] = field(default_factory=set)
    #: Paths answered with another status and an empty body (500, 503, 403 …).
    statuses: dict[str, int] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    #: GETs of these paths answer 302 to the given absolute URL.
    redirects: dict[str, str] = field(default_factory=dict)
    #: Authorized fetch (Mastodon's secure mode, GoToSocial): GETs must be signed by one of
    #: these keys {keyId: public PEM}, checked with pyhttpsig; None serves everyone.
    require_signed_fetch: dict[str, str] | None = None
    #: The host name in its URLs ("localhost" gives a second, separately blockable domain).
    host: str = "127.0.0.1"
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.port}"

    async def start(self) -> FakeInstance:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/{tail:.*}", self._get)
        self.server = TestServer(app, host="127.0.0.1")
        # A remote going away does not wait for our idle keep-alive connections: with
        # aiohttp's default (60 s) a delivery in flight at the end of a test held its
        # teardown until our client's 30 s timeout.
        await self.server.start_server(shutdown_timeout=SHUTDOWN_TIMEOUT)
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def actor(self, username: str = "alice", *, ed25519: bool = False,
              key_style: str = "mastodon") -> FakeActor:
        ed = ed25519 or key_style == "multikey"
        pair = keys.generate_ed25519_keypair() if ed else pooled_rsa_keypair()
        a = FakeActor(self, username, pair, key_style=key_style)
        self.actors[username] = a
        return a

    def new_id(self, kind: str = "objects") -> str:
        return f"{self.url}/{kind}/{next(self._ids)}"

    def publish(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Make an object fetchable at its id (for ancestor fetches)."""
        self.objects[obj["id"]] = obj
        return obj

    def serve(self, path: str, doc: Any, content_type: str = "application/activity+json"
              ) -> str:
        """Serve any document at `path`; returns its URL."""
        self.documents[path] = (doc, content_type)
        return f"{self.url}{path}"

    def redirect(self, path: str, location: str) -> None:
        """Answer GETs of `path` with a 302 to `location` (an open redirect, say)."""
        self.redirects[path] = location

    def serve_file(self, path: str, data: bytes, content_type: str) -> str:
        """Serve raw bytes (an image) at `path` with that Content-Type; returns its URL."""
        self.files[path] = (data, content_type)
        return f"{self.url}{path}"

    def gate(self, path: str) -> Gate:
        """Hold GETs of `path` until `gate.release` is set."""
        self.gates[path] = Gate()
        return self.gates[path]

    def count(self, path: str) -> int:
        """How many GETs of `path` came in."""
        return self.hits.count(path)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.method == "GET":
            self.hits.append(request.path)
            gate = self.gates.get(request.path)
            if gate is not None:
                gate.arrived.set()
                await gate.release.wait()
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        if self.require_signed_fetch is None:
            return True
        raw = request.headers.get("Signature", "")
        key_id = next((part.split("=", 1)[1].strip('"') for part in raw.split(",")
                       if part.strip().startswith("keyId=")), None)
        pem = self.require_signed_fetch.get(key_id or "")
        if pem is None:
            return False
        verifier = HeaderVerifier(dict(request.headers), pem,
                                  required_headers=["(request-target)", "host", "date"],
                                  method="GET", path=request.path_qs, sign_header="signature")
        return bool(verifier.verify())

    async def _get(self, request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/objects/"):
            self.fetched.append(Received(path, dict(request.headers), b""))
        if not self._authorized(request):
            return web.Response(status=401)
        if path in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[path]})
        if path in self.gone:
            return web.Response(status=410)
        if path in self.statuses:
            return web.Response(status=self.statuses[path])
        if path in self.files:
            data, content_type = self.files[path]
            return web.Response(body=data, headers={"Content-Type": content_type})
        doc = self._document(path)
        if doc is None:
            return web.Response(status=404)
        body, content_type = doc
        return web.Response(body=json.dumps(body).encode(),
                            headers={"Content-Type": content_type})

    def _document(self, path: str) -> tuple[Any, str] | None:
        as2 = "application/activity+json"
        if path in self.documents:
            return self.documents[path]
        if f"{self.url}{path}" in self.objects:
            return self.objects[f"{self.url}{path}"], as2
        for actor in self.actors.values():
            if path == f"/users/{actor.username}":
                return actor.document(), as2
            key_doc = actor.key_document()
            if key_doc is not None and actor.key_id == f"{self.url}{path}":
                return key_doc, as2
        return None

    async def _inbox(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        return web.Response(status=self.inbox_status)


@contextlib.asynccontextmanager
async def running(count: int = 1, host: str = "127.0.0.1") -> AsyncIterator[list[FakeInstance]]:
    """Start `count` fake instances and close them afterwards."""
    started = [await FakeInstance(host=host).start() for _ in range(count)]
    try:
        yield started
    finally:
        for inst in started:
            await inst.close()


class LoopbackNames(AbstractResolver):
    """A resolver that answers 127.0.0.1 for the names it is given (in any spelling, the
    way /etc/hosts would) and asks the system about every other name.

    Given to the app under test (`make_instance(resolver=…)`), it makes a fake instance
    reachable under a name such as `bücher.example`; the address guard still judges
    every answer, and connections are real.
    """

    def __init__(self, *names: str) -> None:
        self.names = {idna.encode(n, uts46=True).decode("ascii").lower() for n in names}
        self.asked: list[str] = []
        self._system = aiohttp.ThreadedResolver()

    def __call__(self) -> LoopbackNames:
        return self  # the app asks for a resolver per HTTP client; one serves them all

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host.lower() in self.names:
            return [ResolveResult(hostname=host, host="127.0.0.1", port=port,
                                  family=socket.AF_INET, proto=0,
                                  flags=socket.AI_NUMERICHOST)]
        return await self._system.resolve(host, port, family)

    async def close(self) -> None:
        pass  # shared by the app's clients; the system resolver holds nothing to release


_RSA_POOL: list[keys.KeyPair] = []


def pooled_rsa_keypair() -> keys.KeyPair:
    """An RSA key pair for a test actor (FakeActor here, PeerActor in peers.py).

    RSA generation is the slowest thing in the suite; a small per-process pool keeps any 8
    actors made one after another distinct while reusing keys across tests."""
    if len(_RSA_POOL) < 8:
        _RSA_POOL.append(keys.generate_rsa_keypair())
        return _RSA_POOL[-1]
    _RSA_POOL.append(_RSA_POOL.pop(0))
    return _RSA_POOL[-1]


# --- builders --------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def note(
    actor: FakeActor,
    in_reply_to: str | None,
    *,
    content: str = "<p>Nice post!</p>",
    visibility: str = "public",
    summary: str | None = None,
    mention: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Mastodon-shaped Note; visibility public|unlisted|followers|direct."""
    to, cc = {
        "public": ([PUBLIC], [actor.followers]),
        "unlisted": ([actor.followers], [PUBLIC]),
        "followers": ([actor.followers], []),
        "direct": ([mention] if mention else [], []),
    }[visibility]
    if mention and visibility != "direct":
        cc = [*cc, mention]
    doc: dict[str, Any] = {
        "id": actor.instance.new_id("objects"),
        "type": "Note",
        "summary": summary,
        "inReplyTo": in_reply_to,
        "published": now_iso(),
        "url": f"{actor.instance.url}/@{actor.username}/1",
        "attributedTo": actor.id,
        "to": to,
        "cc": cc,
        "sensitive": bool(summary),
        "content": content,
        "tag": [{"type": "Mention", "href": mention, "name": "@blog"}] if mention else [],
        "attachment": [],
    }
    doc.update(extra or {})
    return doc


def activity(actor: FakeActor, type_: str, obj: Any, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": MASTODON_CONTEXT,
        "id": actor.instance.new_id("activities"),
        "type": type_,
        "actor": actor.id,
        "object": obj,
    }
    if isinstance(obj, dict):
        doc["to"] = obj.get("to", [])
        doc["cc"] = obj.get("cc", [])
    doc.update(extra)
    return doc


async def deliver(
    session: aiohttp.ClientSession,
    actor: FakeActor,
    inbox_url: str,
    doc: dict[str, Any],
    *,
    signer: Signer = our_cavage,
    key_id: str | None = None,
    body: bytes | None = None,
    now: datetime | None = None,
    content_type: str = "application/activity+json",
    tamper: Callable[[bytes], bytes] | None = None,
    headers: dict[str, str] | None = None,
    private_pem: str | None = None,
) -> aiohttp.ClientResponse:
    """Sign and POST an activity like a remote server would.

    The URL is sent exactly as given (no re-quoting), so a query string is signed as sent.
    """
    raw = body if body is not None else json.dumps(doc).encode()
    base = {"Content-Type": content_type, **(headers or {})}
    signed = signer(
        "POST",
        inbox_url,
        dict(base),
        raw,
        key_id or actor.key_id,
        private_pem or actor.keypair.private_pem,
        now or datetime.now(UTC),
    )
    sent = tamper(raw) if tamper else raw
    resp = await session.post(URL(inbox_url, encoded=True), data=sent,
                              headers={**base, **signed})
    await resp.read()
    return resp


#: Every way a test peer can sign: our code and the independent libraries, both schemes.
SIGNERS: dict[str, Signer] = {
    "ours-cavage": our_cavage, "pyhttpsig-cavage": cavage_sign,
    "ours-rfc9421": our_rfc9421, "independent-rfc9421": rfc9421_sign,
}
