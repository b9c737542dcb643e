"""Fake fediverse peers on 127.0.0.1: a Mastodon-like instance hosting many actors, and
Mastodon-shaped activities sent by them."""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from common import HOST, REPO, free_port, public_pem
from cryptography.hazmat.primitives.asymmetric import rsa

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The @context lists the test helpers use: Mastodon's, as it sends them.
from tests.helpers.fediverse import ACTOR_CONTEXT, MASTODON_CONTEXT

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@dataclass
class FakeInstance:
    """One remote server at http://127.0.0.1:PORT serving actors /users/uN (RSA-2048)."""

    keys: list[rsa.RSAPrivateKey]
    port: int = field(default_factory=free_port)
    runner: web.AppRunner | None = None
    fetches: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100_000))
    _documents: dict[str, bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{HOST}:{self.port}"

    def actor_id(self, n: int) -> str:
        return f"{self.url}/users/u{n}"

    def key_id(self, n: int) -> str:
        return f"{self.actor_id(n)}#main-key"

    def document(self, n: int) -> dict[str, Any]:
        actor = self.actor_id(n)
        return {
            "@context": ACTOR_CONTEXT,
            "id": actor,
            "type": "Person",
            "preferredUsername": f"u{n}",
            "name": f"Reader Number {n}",
            "summary": "<p>Reads blogs, replies from Mastodon.</p>",
            "url": f"{self.url}/@u{n}",
            "inbox": f"{actor}/inbox",
            "outbox": f"{actor}/outbox",
            "followers": f"{actor}/followers",
            "following": f"{actor}/following",
            "endpoints": {"sharedInbox": f"{self.url}/inbox"},
            "icon": {"type": "Image", "mediaType": "image/png",
                     "url": f"{self.url}/avatars/u{n}.png"},
            "publicKey": {"id": self.key_id(n), "owner": actor,
                          "publicKeyPem": public_pem(self.keys[n])},
            "manuallyApprovesFollowers": False,
            "discoverable": True,
            "published": "2023-01-01T00:00:00Z",
        }

    async def start(self) -> FakeInstance:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, self.port).start()
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _actor(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not name.startswith("u") or not name[1:].isdigit() or int(name[1:]) >= len(self.keys):
            return web.Response(status=404)
        self.fetches += 1
        body = self._documents.get(name)
        if body is None:
            body = self._documents[name] = json.dumps(self.document(int(name[1:]))).encode()
        return web.Response(body=body, content_type="application/activity+json")

    def create_note(self, n: int, in_reply_to: str, mention: str, *, text: str) -> dict[str, Any]:
        """A Create{Note} reply shaped like Mastodon 4 sends it (public, mentioning the blog)."""
        actor = self.actor_id(n)
        status = next(self._ids)
        note_id = f"{actor}/statuses/{status}"
        published = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        content = (
            f'<p><span class="h-card" translate="no"><a href="{mention}" class="u-url mention">'
            f'@<span>blog</span></a></span> {text} See <a href="https://example.com/notes/{status}"'
            ' target="_blank" rel="nofollow noopener noreferrer" translate="no">'
            '<span class="invisible">https://</span><span class="">example.com/notes/'
            f'{status}</span><span class="invisible"></span></a></p>'
        )
        note = {
            "id": note_id,
            "type": "Note",
            "summary": None,
            "inReplyTo": in_reply_to,
            "published": published,
            "url": f"{self.url}/@u{n}/{status}",
            "attributedTo": actor,
            "to": [PUBLIC],
            "cc": [f"{actor}/followers", mention],
            "sensitive": False,
            "atomUri": note_id,
            "inReplyToAtomUri": in_reply_to,
            "conversation": f"tag:{self.authority},2024-05-01:objectId={status}:objectType="
                            "Conversation",
            "content": content,
            "contentMap": {"en": content},
            "attachment": [],
            "tag": [{"type": "Mention", "href": mention, "name": "@blog@127.0.0.1"}],
            "replies": {
                "id": f"{note_id}/replies", "type": "Collection",
                "first": {"type": "CollectionPage", "next": f"{note_id}/replies?only_other_"
                          "accounts=true&page=true", "partOf": f"{note_id}/replies",
                          "items": []},
            },
        }
        return {
            "@context": MASTODON_CONTEXT,
            "id": f"{note_id}/activity",
            "type": "Create",
            "actor": actor,
            "published": published,
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }
