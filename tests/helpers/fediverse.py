"""A fake fediverse instance: a real aiohttp server on 127.0.0.1 serving actors and notes,
signing what it sends and recording what it receives."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedcomments.ap import httpsig, keys

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
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


@dataclass
class FakeActor:
    instance: FakeInstance
    username: str
    keypair: keys.KeyPair
    name: str = ""

    @property
    def id(self) -> str:
        return f"{self.instance.url}/users/{self.username}"

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
        return {
            "@context": ACTOR_CONTEXT,
            "id": self.id,
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
            "publicKey": {
                "id": self.key_id,
                "owner": self.id,
                "publicKeyPem": self.keypair.public_pem,
            },
            "manuallyApprovesFollowers": False,
        }


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class FakeInstance:
    """One remote server: actors at /users/NAME, objects at /objects/N, inboxes recording."""

    server: TestServer | None = None
    actors: dict[str, FakeActor] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    #: GETs of /objects/N with their headers (our signed fetches, for verifiers to check).
    fetched: list[Received] = field(default_factory=list)
    inbox_status: int = 202
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> FakeInstance:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_get("/objects/{n}", self._object)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def actor(self, username: str = "alice", *, ed25519: bool = False) -> FakeActor:
        pair = keys.generate_ed25519_keypair() if ed25519 else _rsa()
        a = FakeActor(self, username, pair)
        self.actors[username] = a
        return a

    def new_id(self, kind: str = "objects") -> str:
        return f"{self.url}/{kind}/{next(self._ids)}"

    def publish(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Make an object fetchable at its id (for ancestor fetches)."""
        self.objects[obj["id"]] = obj
        return obj

    async def _actor(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=404)
        return web.json_response(actor.document(), content_type="application/activity+json")

    async def _object(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        self.fetched.append(Received(request.path, dict(request.headers), b""))
        obj = self.objects.get(f"{self.url}{request.path}")
        if obj is None:
            return web.Response(status=404)
        return web.json_response(obj, content_type="application/activity+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        return web.Response(status=self.inbox_status)


_RSA_POOL: list[keys.KeyPair] = []


def _rsa() -> keys.KeyPair:
    # RSA generation is the slowest thing in the suite; a small per-process pool keeps
    # actors distinct within a test while reusing keys across tests.
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
) -> aiohttp.ClientResponse:
    """Sign and POST an activity like a remote server would."""
    raw = body if body is not None else json.dumps(doc).encode()
    base = {"Content-Type": content_type, **(headers or {})}
    signed = signer(
        "POST",
        inbox_url,
        dict(base),
        raw,
        key_id or actor.key_id,
        actor.keypair.private_pem,
        now or datetime.now(UTC),
    )
    sent = tamper(raw) if tamper else raw
    resp = await session.post(inbox_url, data=sent, headers={**base, **signed})
    await resp.read()
    return resp
