"""Shared steps of the delivery, publishing and reply tests: a blog whose worker the test
drives by hand, followers on real peers, and a look at the delivery table."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from fedcomments.delivery.worker import DeliveryWorker
from tests.conftest import Instance
from tests.helpers.peers import Peer, PeerActor


async def start_blog_without_worker(make_instance: Callable[..., Any],
                                    **sections: dict[str, Any]) -> Instance:
    """A fedcomments instance (moderation off unless given) without its background
    delivery worker: the test drives delivery with worker()."""
    federation = {"delivery_worker": False, **sections.pop("federation", {})}
    moderation = sections.pop("moderation", {"policy": "none"})
    return await make_instance(federation=federation, moderation=moderation, **sections)


def worker(fc: Instance, **options: Any) -> DeliveryWorker:
    return DeliveryWorker(fc.rt, rng=random.Random(7), **options)


async def follow(fc: Instance, peer: Peer, actor: PeerActor) -> None:
    """`actor` follows the blog (a signed Follow to the shared inbox); asserts 202."""
    status = await peer.send(actor, fc.rt.urls.shared_inbox,
                             peer.follow(actor, fc.rt.urls.actor), fc.clock())
    assert status == 202


async def followed(fc: Instance, *pairs: tuple[Peer, PeerActor]) -> None:
    """Followers in place and their Accepts delivered and forgotten by the peers."""
    for peer, actor in pairs:
        await follow(fc, peer, actor)
    await worker(fc).run_until_idle()
    for peer, _ in pairs:
        peer.arrivals.clear()


async def deliveries(fc: Instance) -> list[dict[str, Any]]:
    rows = await fc.rt.db.read.fetchall(
        "SELECT id, activity_id, inbox, host, status, attempts, next_attempt_at, locked_until, "
        "last_status, last_error FROM deliveries ORDER BY id")
    return [dict(r) for r in rows]


async def reply_from(fc: Instance, peer: Peer, actor: PeerActor, in_reply_to: str,
                     **options: Any) -> tuple[int, dict[str, Any]]:
    """`actor` replies (signed Create{Note}); returns the stored comment id and the note."""
    create = peer.reply(actor, in_reply_to, **options)
    status = await peer.send(actor, fc.rt.urls.shared_inbox, create, fc.clock())
    assert status == 202
    row = await fc.rt.db.read.fetchone("SELECT id FROM comments WHERE ap_id = ?",
                                       (create["object"]["id"],))
    assert row is not None
    return int(row[0]), create["object"]
