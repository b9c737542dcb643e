"""Builders for reader-side tests: posts, form tokens, local comments, fediverse replies."""

from __future__ import annotations

from typing import Any

import aiohttp

from fedcomments.store import comments as comment_store
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, activity, deliver, note


async def form_token(fc: Instance, post_id: int) -> str:
    resp = await fc.session.get(f"{fc.url}/api/v1/form?post={post_id}")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


async def post_local(fc: Instance, post_id: int, *, wait: float = 5, origin: str | None = "",
                     headers: dict[str, str] | None = None,
                     **fields: Any) -> aiohttp.ClientResponse:
    """POST a reader comment through the JSON API as the blog's page would.

    A fresh form token is fetched and the clock moved `wait` seconds (a person typing);
    `origin=""` means "this server's origin", None sends no Origin header.
    """
    body = {"post": str(post_id), "name": "Reader", "text": "A thoughtful comment.",
            **fields}
    if "token" not in fields:
        body["token"] = await form_token(fc, post_id)
    fc.clock.advance(seconds=wait)
    sent = dict(headers or {})
    if origin is not None:
        sent["Origin"] = origin or fc.url
    return await fc.session.post(f"{fc.url}/api/v1/comments", json=body, headers=sent)


async def remote_reply(fc: Instance, actor: FakeActor, in_reply_to: str, *,
                       publish: bool = False, **note_args: Any) -> int:
    """A signed Create{Note} through the real inbox; returns the stored comment's id.
    `publish`: its server keeps serving the note (a recheck, due an hour later, finds it)."""
    obj = note(actor, in_reply_to, **note_args)
    if publish:
        actor.instance.publish(obj)
    resp = await deliver(fc.session, actor, f"{fc.url}/inbox", activity(actor, "Create", obj))
    assert resp.status == 202, await resp.text()
    stored = await comment_store.by_ap_id(fc.rt.db.read, obj["id"])
    assert stored is not None, "the reply was not stored"
    return stored.id


async def thread(fc: Instance, **query: str) -> dict[str, Any]:
    resp = await fc.session.get(f"{fc.url}/api/v1/thread", params=query)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        out.append(node)
        out.extend(flatten(node["replies"]))
    return out
