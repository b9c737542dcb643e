"""What the inbox keeps up besides activities: a signed request clears its host's delivery
"unavailable" mark (issue 4, point 5), and old idempotency records are pruned."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from fedcomments.delivery import policy as delivery_policy
from fedcomments.model import HostState
from fedcomments.services import inbox as inbox_service
from fedcomments.store import queue
from tests.helpers.fediverse import FakeInstance, activity, note
from tests.helpers.inbox import Blog, outcome

HOST = "127.0.0.1"  # where the fake instance's actors live (the port is not part of it)


async def mark_unavailable(blog: Blog) -> HostState:
    """HOST as the delivery worker leaves it after failures on seven distinct days."""
    now = blog.rt.now()
    days = tuple((now - timedelta(days=d)).strftime("%Y-%m-%d") for d in range(6, -1, -1))
    state = HostState(host=HOST, consecutive_failures=9, failure_days=days,
                                      unavailable_since=now - timedelta(hours=2))
    async with blog.rt.db.transaction() as tx:
        await queue.save_host(tx, state)
    await blog.rt.refresh_shared(force=True)
    return state


# --- "unavailable" hosts ---------------------------------------------------------------------


async def test_verified_request_clears_unavailable_host(blog: Blog, remote: FakeInstance) -> None:
    """Given HOST marked unavailable by the delivery worker, when a request from it fails
    verification, then the mark stays; when alice there sends a verified Like, then the
    mark and its failure days are gone and the worker may deliver to HOST again."""
    await mark_unavailable(blog)
    assert HOST in blog.rt.marked_hosts
    alice = remote.actor("alice")
    forged = await blog.send(alice, activity(alice, "Like", blog.post.ap_id),
                             private_pem=remote.actor("mallory").keypair.private_pem)
    assert forged.status == 401
    state = await queue.host_state(blog.rt.db.read, HOST)
    assert (state.unavailable_since is not None, len(state.failure_days)) == (True, 7)
    r = await blog.send(alice, activity(alice, "Like", blog.post.ap_id))
    assert await outcome(r) == "reaction added"
    state = await queue.host_state(blog.rt.db.read, HOST)
    assert (state.unavailable_since, state.failure_days) == (None, ())
    assert HOST not in blog.rt.marked_hosts
    assert delivery_policy.host_slots(state, blog.rt.now(), 4) == 1  # a half-open probe
    assert await queue.marked_hosts(blog.rt.db.read) == set()


async def test_ignored_activity_from_unavailable_host_clears_it(blog: Blog,
                                                                remote: FakeInstance) -> None:
    """Given HOST marked unavailable, when a verified activity of a type we ignore arrives
    from it, then the host is cleared all the same: it is up and signing."""
    await mark_unavailable(blog)
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "QuoteRequest", blog.post.ap_id))
    assert await outcome(r) == "ignored type"
    state = await queue.host_state(blog.rt.db.read, HOST)
    assert (state.unavailable_since, state.failure_days) == (None, ())


async def test_healthy_host_costs_no_write(blog: Blog, remote: FakeInstance) -> None:
    """Given a host with no delivery trouble, when its verified reply arrives, then no host
    row is written: the check is in memory."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)))
    assert await outcome(r) == "created"
    assert await blog.rows("SELECT host FROM hosts") == []
    assert blog.rt.marked_hosts == set()


# --- pruning ---------------------------------------------------------------------------------


async def records(blog: Blog) -> tuple[list[str], list[tuple[str, int]]]:
    """(processed activity ids, (tombstoned id, had_comment)) in insertion order."""
    activities = [r[0] for r in await blog.rows(
        "SELECT ap_id FROM processed_activities ORDER BY rowid")]
    tombstones = [(r[0], r[1]) for r in await blog.rows(
        "SELECT ap_id, had_comment FROM tombstones ORDER BY rowid")]
    return activities, tombstones


async def old_records(blog: Blog, remote: FakeInstance) -> dict[str, Any]:
    """At the clock's now: alice likes the post, writes a reply and deletes it, and deletes
    a note we never had. Returns the documents sent."""
    alice = remote.actor("alice")
    clock = blog.instance.clock
    like = activity(alice, "Like", blog.post.ap_id)
    reply = note(alice, blog.post.ap_id)
    create = activity(alice, "Create", reply)
    delete_reply = activity(alice, "Delete", reply["id"])
    stranger = f"{remote.url}/objects/never-seen"
    delete_unknown = activity(alice, "Delete", stranger)
    for doc in (like, create, delete_reply, delete_unknown):
        await outcome(await blog.send(alice, doc, now=clock()))
    return {"alice": alice, "like": like, "create": create, "delete_reply": delete_reply,
            "delete_unknown": delete_unknown, "reply": reply, "stranger": stranger}


async def test_prune_forgets_old_records_but_not_comment_tombstones(
        blog: Blog, remote: FakeInstance) -> None:
    """Given activities processed and two tombstones (a deleted reply of alice's, a note we
    never stored) on day 0, when pruning runs on day 29, then nothing goes; on day 31 the
    activity ids and the unknown note's tombstone go, the reply's tombstone stays, and a
    replay of the reply's Create still cannot bring it back."""
    clock = blog.instance.clock
    sent = await old_records(blog, remote)
    ids = [sent[k]["id"] for k in ("like", "create", "delete_reply", "delete_unknown")]
    assert await records(blog) == (ids, [(sent["reply"]["id"], 1), (sent["stranger"], 0)])
    clock.advance(days=29)
    await inbox_service.prune_records(blog.rt)
    assert await records(blog) == (ids, [(sent["reply"]["id"], 1), (sent["stranger"], 0)])
    clock.advance(days=2)
    bob = remote.actor("bob")
    recent = activity(bob, "Like", blog.post.ap_id)
    await outcome(await blog.send(bob, recent, now=clock()))
    await inbox_service.prune_records(blog.rt)
    assert await records(blog) == ([recent["id"]], [(sent["reply"]["id"], 1)])
    replay = await blog.send(sent["alice"], sent["create"], now=clock())
    assert await outcome(replay) == "deleted before"
    assert await blog.comments() == []


async def test_prune_works_in_batches(blog: Blog, monkeypatch: pytest.MonkeyPatch,
                                      remote: FakeInstance) -> None:
    """Given more old activity ids than one batch, when pruning runs, then every one of them
    goes (several short transactions, not one long one)."""
    monkeypatch.setattr(inbox_service, "PRUNE_BATCH", 2)
    alice = remote.actor("alice")
    clock = blog.instance.clock
    for kind in ("Like", "Announce", "Like", "Announce", "Like"):
        await outcome(await blog.send(alice, activity(alice, kind, blog.post.ap_id),
                                      now=clock()))
    assert len((await records(blog))[0]) == 5
    clock.advance(days=31)
    await inbox_service.prune_records(blog.rt)
    assert await records(blog) == ([], [])


async def test_background_task_prunes_as_the_clock_moves(blog: Blog,
                                                         remote: FakeInstance) -> None:
    """Given the running server with day-0 records, when its clock moves 31 days on, then
    its own background task prunes them (polled for at most 10 s), keeping the tombstone of
    the reply we had."""
    sent = await old_records(blog, remote)
    blog.instance.clock.advance(days=31)
    expected = ([], [(sent["reply"]["id"], 1)])
    for _ in range(200):
        if await records(blog) == expected:
            break
        await asyncio.sleep(0.05)
    assert await records(blog) == expected
