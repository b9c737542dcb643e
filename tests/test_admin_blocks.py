"""Domain and actor blocks end to end: a running instance, real peers, the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fedcomments.model import CommentStatus
from fedcomments.remote.guard import FetchRefused, RefusalReason
from fedcomments.runtime import open_runtime
from fedcomments.services import blocks
from fedcomments.services.blocks import watch_blocklist
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store.rows import ts
from tests.conftest import Instance, make_settings
from tests.helpers.admin import (
    count,
    remember_actor,
    reply,
    run_cli,
    send,
    start_peer,
    wait_for_probe,
    wait_until,
    write_config,
)
from tests.helpers.fediverse import FakeInstance
from tests.helpers.posts import add_post_via_api


async def _future_delivery(fc: Instance, inbox: str) -> int:
    """A pending job due tomorrow (no worker can take it first); returns its id."""
    later = ts(fc.clock() + timedelta(days=1))
    async with fc.rt.db.transaction() as tx:
        return await tx.execute(
            "INSERT INTO deliveries (activity_id, inbox, host, body, status, next_attempt_at, "
            "created_at) VALUES (?, ?, ?, X'7B7D', 'pending', ?, ?)",
            (f"{fc.url}/activities/test/{inbox}", inbox, inbox.split("/")[2].split(":")[0],
             later, later))


async def _status_of(fc: Instance, job_id: int) -> str:
    row = await fc.rt.db.read.fetchone("SELECT status FROM deliveries WHERE id = ?", (job_id,))
    assert row is not None
    return str(row[0])


async def _thread(fc: Instance, post_id: int) -> dict[str, Any]:
    resp = await fc.get(f"/api/v1/thread?id={post_id}", accept="application/json")
    assert resp.status == 200
    return dict(await resp.json())


async def _page(fc: Instance) -> str:
    resp = await fc.get("/posts/hello", accept="text/html")
    assert resp.status == 200
    return await resp.text()


async def _local_comments(fc: Instance) -> int:
    resp = await fc.get("/nodeinfo/2.1", accept="application/json")
    return int((await resp.json())["usage"]["localComments"])


async def test_cli_domain_block_removes_everything_and_refuses_without_fetch(
        make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given a peer that followed, commented and liked, when `domains block` runs through the
    CLI beside the running server, then its comment (a tombstone under another's reply),
    like and follow are gone, its deliveries are cancelled and its next POST gets 403 with
    no fetch; after `unblock` its new activities are accepted and nothing comes back."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer, other = await start_peer("localhost"), await FakeInstance().start()
    try:
        alice, bob = peer.actor("alice"), other.actor("bob")
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, alice, "Follow", fc.rt.urls.actor) == 202
        status, alice_note = await reply(fc, alice, post["ap_id"], "<p>First!</p>")
        assert status == 202
        status, _ = await reply(fc, bob, alice_note["id"], "<p>Answering alice</p>")
        assert status == 202
        assert await send(fc, alice, "Like", post["ap_id"]) == 202
        job = await _future_delivery(fc, alice.inbox)
        assert await _local_comments(fc) == 2
        thread = await _thread(fc, post["id"])
        assert (thread["count"], thread["reactions"]["likes"]) == (2, 1)
        assert "First!" in await _page(fc)

        run = await run_cli("domains", "block", f"http://LOCALHOST:{peer.server.port}/@alice",
                            "--reason", "harassment", "--json", "--config", config)
        assert run.code == 0, run.err
        cancelled = await count(fc, "SELECT COUNT(*) FROM deliveries WHERE host = 'localhost' "
                                "AND status = 'cancelled'")
        assert run.json() == {"domain": "localhost", "created": True, "covered_by": None,
                              "keep_content": False,
                              "removed": {"comments": 1, "reactions": 1, "followers": 1,
                                          "deliveries": cancelled}}
        assert await _status_of(fc, job) == "cancelled"
        assert await count(fc, "SELECT COUNT(*) FROM deliveries WHERE host = 'localhost' "
                           "AND status = 'pending'") == 0

        # Every public surface: the thread keeps bob's reply under an empty tombstone.
        db = fc.rt.db.read
        gone = await comment_store.by_ap_id(db, alice_note["id"])
        assert gone is not None and (gone.status, gone.content) == (CommentStatus.DELETED, "")
        thread = await comment_store.thread_rows(db, post["id"])
        assert [(c.status, c.actor.ap_id if c.actor else None) for c in thread] == [
            (CommentStatus.DELETED, alice.id), (CommentStatus.APPROVED, bob.id)]
        assert await comment_store.count_public(db, post["id"]) == 1
        assert await _local_comments(fc) == 1
        assert await comment_store.reactions_for_post(db, post["id"]) == []
        thread = await _thread(fc, post["id"])
        assert (thread["count"], thread["reactions"]["likes"]) == (1, 0)
        [root] = thread["comments"]
        assert (root["deleted"], "author" in root, root["replies"][0]["author"]["handle"]) == (
            True, False, "@bob@127.0.0.1")
        page = await _page(fc)
        assert "First!" not in page and "Answering alice" in page
        assert await actor_store.count_followers(db) == 0
        resp = await fc.get("/users/blog/followers")
        assert (await resp.json())["totalItems"] == 0

        # The running server notices the CLI's change within a second.
        assert await wait_for_probe(fc, alice, 403) < 2.0
        peer.hits.clear()
        peer.requests.clear()
        status, late = await reply(fc, alice, post["ap_id"], "<p>Again</p>")
        assert status == 403
        assert peer.requests == []
        assert await comment_store.by_ap_id(db, late["id"]) is None
        with pytest.raises(FetchRefused) as refused:
            await fc.rt.remote.post(alice.inbox, b"{}")
        assert refused.value.reason is RefusalReason.BLOCKED
        assert peer.requests == []

        listed = await run_cli("domains", "list", "--json", "--config", config)
        [entry] = listed.json()["domains"]
        assert (entry["domain"], entry["reason"], entry["removed"]) == (
            "localhost", "harassment", run.json()["removed"])

        run = await run_cli("domains", "unblock", "localhost", "--config", config)
        assert (run.code, run.out) == (
            0, "unblocked localhost (content removed by the block is not restored)\n")
        await wait_for_probe(fc, alice, 401)
        status, fresh = await reply(fc, alice, post["ap_id"], "<p>Back</p>")
        assert status == 202
        assert (await comment_store.by_ap_id(db, fresh["id"])) is not None
        still = await comment_store.by_ap_id(db, alice_note["id"])
        assert still is not None and still.status is CommentStatus.DELETED
        assert await actor_store.count_followers(db) == 0
    finally:
        await peer.close()
        await other.close()


async def test_cli_block_of_parent_domain_covers_a_subdomain_peer(
        make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given a peer on social.peer.localhost that followed, commented and liked, when
    `domains block *.peer.localhost` runs, then its content and follow are removed and its
    POSTs get 403 without a fetch; after unblocking peer.localhost it is accepted again."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await start_peer("social.peer.localhost")
    try:
        carol = peer.actor("carol")
        await remember_actor(fc, carol)
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, carol, "Follow", fc.rt.urls.actor) == 202
        status, first = await reply(fc, carol, post["ap_id"])
        assert status == 202
        assert await send(fc, carol, "Announce", post["ap_id"]) == 202

        run = await run_cli("domains", "block", "*.Peer.LocalHost.", "--json",
                            "--config", config)
        assert run.code == 0, run.err
        data = run.json()
        assert (data["domain"], data["created"]) == ("peer.localhost", True)
        assert {k: data["removed"][k] for k in ("comments", "reactions", "followers")} == {
            "comments": 1, "reactions": 1, "followers": 1}
        db = fc.rt.db.read
        assert await comment_store.by_ap_id(db, first["id"]) is None
        assert await comment_store.is_tombstoned(db, first["id"])

        await wait_for_probe(fc, carol, 403)
        status, _ = await reply(fc, carol, post["ap_id"], "<p>Still here?</p>")
        assert status == 403
        assert peer.requests == []

        run = await run_cli("domains", "unblock", "peer.localhost", "--config", config)
        assert run.code == 0, run.err
        await wait_for_probe(fc, carol, 401)
        status, again = await reply(fc, carol, post["ap_id"], "<p>Hello again</p>")
        assert status == 202
        assert await comment_store.by_ap_id(db, again["id"]) is not None
        assert await comment_store.by_ap_id(db, first["id"]) is None
    finally:
        await peer.close()


async def test_admin_api_block_takes_effect_at_once(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a commenting peer, when the admin API blocks its domain, then its very next
    POST is refused (no waiting) and unblocking through the API lets it in at once."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        post = await add_post_via_api(fc, "hello")
        status, first = await reply(fc, alice, post["ap_id"])
        assert status == 202

        resp = await fc.admin("POST", "/api/v1/admin/domains",
                              json={"domain": "LOCALHOST.", "reason": "spam"})
        assert resp.status == 201
        assert await resp.json() == {"domain": "localhost", "created": True, "covered_by": None,
                                     "keep_content": False, "removed": {
                                         "comments": 1, "reactions": 0, "followers": 0,
                                         "deliveries": 0}}
        peer.requests.clear()
        status, _ = await reply(fc, alice, post["ap_id"], "<p>Let me in</p>")
        assert status == 403
        assert peer.requests == []

        resp = await fc.admin("POST", "/api/v1/admin/domains", json={"domain": "localhost"})
        assert resp.status == 200
        assert (await resp.json())["created"] is False
        resp = await fc.admin("GET", "/api/v1/admin/domains")
        assert [d["domain"] for d in (await resp.json())["domains"]] == ["localhost"]

        resp = await fc.admin("DELETE", "/api/v1/admin/domains/localhost")
        assert (resp.status, await resp.json()) == (200, {"domain": "localhost",
                                                          "unblocked": True})
        status, _ = await reply(fc, alice, post["ap_id"], "<p>Thanks</p>")
        assert status == 202
        assert await comment_store.by_ap_id(fc.rt.db.read, first["id"]) is None
        resp = await fc.admin("DELETE", "/api/v1/admin/domains/localhost")
        assert (resp.status, await resp.json()) == (404, {
            "error": "domain: localhost is not blocked"})
    finally:
        await peer.close()


async def test_keep_content_block_keeps_content_and_reblock_removes_it(
        make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a following, commenting peer, when its domain is blocked with keep_content,
    then comment and follow stay but its deliveries are cancelled and it is refused; a
    second block without keep_content removes them and the counts add up."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, alice, "Follow", fc.rt.urls.actor) == 202
        status, first = await reply(fc, alice, post["ap_id"])
        assert status == 202
        job = await _future_delivery(fc, alice.inbox)

        resp = await fc.admin("POST", "/api/v1/admin/domains",
                              json={"domain": "localhost", "keep_content": True})
        data = await resp.json()
        assert (resp.status, data["keep_content"], data["removed"]["comments"],
                data["removed"]["followers"]) == (201, True, 0, 0)
        assert await _status_of(fc, job) == "cancelled"
        db = fc.rt.db.read
        kept = await comment_store.by_ap_id(db, first["id"])
        assert kept is not None and kept.status is CommentStatus.APPROVED
        assert await actor_store.count_followers(db) == 1
        status, _ = await reply(fc, alice, post["ap_id"], "<p>More</p>")
        assert status == 403
        # The follower is kept, but the next post is not delivered to it.
        later = await add_post_via_api(fc, "later")
        assert await count(fc, "SELECT COUNT(*) FROM deliveries WHERE host = 'localhost' "
                           "AND instr(body, ?) > 0", later["ap_id"]) == 0

        resp = await fc.admin("POST", "/api/v1/admin/domains", json={"domain": "localhost"})
        data = await resp.json()
        assert (resp.status, data["created"], data["removed"]["comments"],
                data["removed"]["followers"]) == (200, False, 1, 1)
        assert await comment_store.by_ap_id(db, first["id"]) is None
        resp = await fc.admin("GET", "/api/v1/admin/domains")
        [entry] = (await resp.json())["domains"]
        assert (entry["keep_content"], entry["removed"]["comments"],
                entry["removed"]["followers"]) == (False, 1, 1)
    finally:
        await peer.close()


async def test_cli_actor_block_by_handle_uses_webfinger_and_spares_neighbours(
        make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given alice and bob on one peer, when `actors block @alice@host` runs, then alice is
    found through WebFinger, her comment and follow go and her POSTs get 403 without a
    fetch, while bob's comment stays and bob is still accepted; unblock lets alice in."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await start_peer("localhost")
    try:
        alice, bob = peer.actor("alice"), peer.actor("bob")
        peer.webfinger(alice)
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, alice, "Follow", fc.rt.urls.actor) == 202
        status, alice_note = await reply(fc, alice, post["ap_id"])
        assert status == 202
        status, bob_note = await reply(fc, bob, post["ap_id"])
        assert status == 202
        handle = f"@alice@localhost:{peer.server.port}"

        run = await run_cli("actors", "block", handle, "--json", "--config", config)
        assert run.code == 0, run.err
        data = run.json()
        assert (data["actor"], data["created"], data["removed"]["comments"],
                data["removed"]["followers"]) == (alice.id, True, 1, 1)
        assert ("GET", f"/.well-known/webfinger?resource=acct:alice@localhost:"
                f"{peer.server.port}") in peer.requests
        db = fc.rt.db.read
        assert await comment_store.by_ap_id(db, alice_note["id"]) is None
        assert await comment_store.by_ap_id(db, bob_note["id"]) is not None

        await wait_for_probe(fc, alice, 403)
        peer.requests.clear()
        status, _ = await reply(fc, alice, post["ap_id"], "<p>Blocked?</p>")
        assert status == 403
        assert peer.requests == []
        status, _ = await reply(fc, bob, post["ap_id"], "<p>Not me</p>")
        assert status == 202

        listed = await run_cli("actors", "list", "--json", "--config", config)
        assert [a["actor"] for a in listed.json()["actors"]] == [alice.id]
        run = await run_cli("actors", "unblock", handle, "--config", config)
        assert (run.code, run.out) == (
            0, f"unblocked {alice.id} (content removed by the block is not restored)\n")
        await wait_for_probe(fc, alice, 401)
        status, _ = await reply(fc, alice, post["ap_id"], "<p>Back</p>")
        assert status == 202
    finally:
        await peer.close()


async def test_cli_blocks_an_actor_never_seen_by_url(make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given an actor this server never heard of, when `actors block URL#main-key` runs,
    then the block is stored under the actor id and its first POST gets 403 before any
    fetch of its key."""
    fc: Instance = await make_instance()
    config = write_config(fc, tmp_path)
    peer = await start_peer("localhost")
    try:
        carol = peer.actor("carol")
        run = await run_cli("actors", "block", carol.key_id, "--config", config)
        assert (run.code, run.err) == (0, "")
        assert run.out == (f"blocked {carol.id}: removed 0 comments, 0 reactions, 0 followers; "
                           "cancelled 0 pending deliveries\n")
        await wait_until(lambda: fc.rt.blocklist.url_blocked(carol.id))
        assert await send(fc, carol, "Follow", fc.rt.urls.actor) == 403
        assert peer.requests == []
        assert await actor_store.by_ap_id(fc.rt.db.read, carol.id) is None
    finally:
        await peer.close()



async def test_watcher_picks_up_blocks_committed_by_another_connection(tmp_path: Path) -> None:
    """Given a runtime watching the blocklist, when another runtime on the same database
    (as the CLI is) blocks a domain and an actor, then the watcher sees both within a
    second, and sees the unblock too."""
    settings = make_settings(tmp_path, 8080)
    async with open_runtime(settings) as server, open_runtime(settings) as cli:
        watcher = asyncio.create_task(watch_blocklist(server, interval=0.05))
        try:
            await blocks.block_domain(cli, "spam.example")
            await blocks.block_actor(cli, "https://other.example/users/troll")
            assert await wait_until(lambda: server.blocklist.domain_blocked("a.spam.example")
                                    and server.blocklist.url_blocked(
                                        "https://other.example/users/troll"), 1.0) < 1.0
            await blocks.unblock_domain(cli, "spam.example")
            await wait_until(lambda: not server.blocklist.domain_blocked("spam.example"), 1.0)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
