"""Blocks hold at once and in every spelling: a block committed by another process stops
the very next request, Unicode hosts meet their punycode blocks, and activities naming a
blocked server are dropped without a fetch from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store.actors import ActorFields
from fedcomments.store.comments import NewComment
from tests.conftest import Instance
from tests.helpers.admin import count, reply, run_cli, start_peer, write_config
from tests.helpers.fediverse import FakeInstance, LoopbackNames, activity, note
from tests.helpers.inbox import STATE_TABLES, Blog, block_domain, stored_state
from tests.helpers.posts import add_post_via_api


async def _rows(fc: Instance) -> int:
    state = await stored_state(fc.rt)
    return sum(len(state[table]) for table in STATE_TABLES)


async def test_unicode_host_is_caught_by_its_block_and_purged(
        make_instance: Any, tmp_path: Path) -> None:
    """Given an actor at https://bücher.example (a Unicode host, reached on loopback) whose
    reply was stored, when `domains block bücher.example` runs, then its comment is found
    and removed and its next reply gets 403, with nothing fetched from it."""
    names = LoopbackNames("bücher.example")
    fc: Instance = await make_instance(resolver=names, moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await FakeInstance(host="bücher.example").start()
    try:
        actor = peer.actor("u")
        post = await add_post_via_api(fc, "hello")
        status, first = await reply(fc, actor, post["ap_id"])
        assert status == 202
        stored = await comment_store.by_ap_id(
            fc.rt.db.read, first["id"].replace("bücher.example", "xn--bcher-kva.example"))
        assert stored is not None and stored.actor is not None
        assert (stored.actor.ap_id, stored.actor.domain) == (
            f"http://xn--bcher-kva.example:{peer.server.port}/users/u", "xn--bcher-kva.example")

        run = await run_cli("domains", "block", "Bücher.example", "--json", "--config", config)
        assert run.code == 0, run.err
        assert (run.json()["domain"], run.json()["removed"]["comments"]) == (
            "xn--bcher-kva.example", 1)
        assert await count(fc, "SELECT COUNT(*) FROM comments WHERE actor_id IS NOT NULL "
                               "AND status != 'deleted'") == 0

        peer.requests.clear()
        before = await _rows(fc)
        status, _ = await reply(fc, actor, post["ap_id"], "<p>Still here</p>")
        assert (status, peer.requests, await _rows(fc)) == (403, [], before)
    finally:
        await peer.close()


async def test_block_finds_actors_stored_under_a_unicode_host(
        make_instance: Any, tmp_path: Path) -> None:
    """Given an actor and its comment stored before hosts were normalised (its domain kept
    as `Bücher.example`), when `domains block xn--bcher-kva.example` runs, then the purge
    finds that actor and removes the comment."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    post = await add_post_via_api(fc, "hello")
    now = fc.rt.now()
    async with fc.rt.db.transaction() as tx:
        actor_id = await actor_store.upsert(tx, ActorFields(
            ap_id="https://Bücher.example/users/old", domain="Bücher.example", type="Person",
            username="old", name="Old", summary=None, url=None, icon=None, inbox=None,
            shared_inbox=None, followers_url=None), now)
        await comment_store.insert(tx, NewComment(
            post_id=post["id"], parent_id=None, origin=Origin.REMOTE,
            visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED, content="<p>old</p>",
            published_at=now, ap_id="https://Bücher.example/notes/1", actor_id=actor_id), now)

    run = await run_cli("domains", "block", "xn--bcher-kva.example", "--json",
                        "--config", config)
    assert run.code == 0, run.err
    assert run.json()["removed"]["comments"] == 1
    assert await comment_store.by_ap_id(fc.rt.db.read, "https://Bücher.example/notes/1") is None


async def test_imported_authors_are_spelled_like_fetched_ones(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a fedcomments export whose fediverse author is https://Bücher.example/users/u
    with its inbox on another server, when it is imported, then the author is stored in
    the one spelling (punycode host, as its later activities and its domain's block use),
    without the foreign inbox, and `domains block bücher.example` removes the comment."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    export = tmp_path / "export.json"
    export.write_text(json.dumps({
        "format": "fedcomments-export", "version": 1,
        "posts": [{"url": "https://blog.example/a/", "title": "A"}],
        "comments": [{
            "key": {"source": "fedcomments", "site": "old.example", "id": "1"},
            "post": "https://blog.example/a/", "origin": "remote",
            "ap_id": "https://Bücher.example/notes/1", "published": "2024-01-01T00:00:00Z",
            "content": "<p>hi</p>",
            "author": {"name": "U", "actor": {
                "id": "https://Bücher.example/users/u", "username": "u",
                "inbox": "https://evil.example/users/u/inbox",
                "shared_inbox": "https://BÜCHER.example/inbox"}}}],
    }), encoding="utf-8")
    run = await run_cli("import", "fedcomments", str(export), "--json", "--config", config)
    assert run.code == 0, run.err
    actors = await fc.rt.db.read.fetchall("SELECT ap_id, domain, inbox, shared_inbox FROM actors")
    assert [tuple(a) for a in actors] == [(
        "https://xn--bcher-kva.example/users/u", "xn--bcher-kva.example", None,
        "https://xn--bcher-kva.example/inbox")]
    run = await run_cli("domains", "block", "bücher.example", "--json", "--config", config)
    assert (run.code, run.json()["removed"]["comments"]) == (0, 1)


async def test_cli_block_stops_the_very_next_post_and_unblock_lets_it_in(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a running server, when `domains block localhost` returns (the CLI: its own
    event loop and database connection), then a signed reply sent at once, by an actor
    whose key was never fetched and by one whose key is cached, gets 403: the blocked
    server receives no request and no row is written; and once `domains unblock` returns,
    both are accepted at once. Five rounds, so a lucky poll cannot pass it."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await start_peer("localhost")
    try:
        post = await add_post_via_api(fc, "hello")
        known = peer.actor("known")
        status, _ = await reply(fc, known, post["ap_id"])
        assert status == 202
        for n in range(5):
            fresh = peer.actor(f"fresh{n}")
            run = await run_cli("domains", "block", "localhost", "--config", config)
            assert run.code == 0, run.err
            peer.requests.clear()
            before = await _rows(fc)
            for actor in (fresh, known):
                status, _ = await reply(fc, actor, post["ap_id"], f"<p>round {n}</p>")
                assert status == 403, (n, actor.username)
            assert (peer.requests, await _rows(fc)) == ([], before), n

            run = await run_cli("domains", "unblock", "localhost", "--config", config)
            assert run.code == 0, run.err
            for actor in (known, fresh):
                status, doc = await reply(fc, actor, post["ap_id"], f"<p>back {n}</p>")
                assert status == 202, (n, actor.username)
                assert await comment_store.by_ap_id(fc.rt.db.read, doc["id"]) is not None
    finally:
        await peer.close()


# --- activities naming a blocked server ----------------------------------------------------

#: What an activity may write besides its (allowed) sender's actor and key.
CONTENT_TABLES = ("comments", "tombstones", "reactions", "followers", "processed_activities",
                  "deliveries", "reports")


async def _content(blog: Blog) -> dict[str, list[tuple[Any, ...]]]:
    state = await stored_state(blog.rt)
    return {table: state[table] for table in CONTENT_TABLES}


@pytest.mark.parametrize("where", ["to", "cc", "mention", "ancestor-cc", "ancestor-mention"])
async def test_reply_naming_a_blocked_account_is_dropped_without_contact(
        blog: Blog, remote: FakeInstance, where: str) -> None:
    """Given a blocked server (a live instance on localhost), when an allowed actor's reply
    names one of its accounts in `to`, in `cc`, in a Mention tag, or an ancestor fetched to
    thread the reply does, then 202 'references a blocked origin': nothing is stored, and
    the blocked server receives no request at all."""
    blocked = await start_peer("localhost")
    try:
        await block_domain(blog.rt, "localhost")
        mallory = blocked.actor("mallory")
        alice = remote.actor("alice")
        parent: str = blog.post.ap_id
        if where.startswith("ancestor"):
            # An earlier note of alice's, not known here: fetched from her server.
            earlier = note(alice, blog.post.ap_id, mention=mallory.id if where.endswith(
                "mention") else None)
            if where == "ancestor-cc":
                earlier["cc"] = [*earlier["cc"], mallory.id]
            parent = remote.publish(earlier)["id"]
        answer = note(alice, parent, mention=mallory.id if where == "mention" else None)
        if where in ("to", "cc"):
            answer[where] = [*answer[where], mallory.id]
        if where == "mention":
            answer["cc"] = [c for c in answer["cc"] if c != mallory.id]
        before = await _content(blog)
        r = await blog.send(alice, activity(alice, "Create", answer))
        assert (r.status, (await r.json())["outcome"]) == (202, "references a blocked origin")
        assert (await _content(blog), blocked.requests) == (before, [])
    finally:
        await blocked.close()
