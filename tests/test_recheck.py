"""Replies that changed without a word: stored remote replies fetched again from their
servers (signed), on a schedule within hourly limits or at once from the CLI; deleted ones
tombstoned, narrowed ones made private, edited ones updated, errors changing nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedcomments.model import CommentStatus, HostState, Visibility
from fedcomments.runtime import Runtime, open_runtime
from fedcomments.services import comments, recheck
from fedcomments.services import posts as post_service
from fedcomments.store import comments as comment_store
from fedcomments.store import queue
from tests.conftest import Instance, free_port, make_settings
from tests.helpers.admin import run_cli, write_config
from tests.helpers.clock import FakeClock
from tests.helpers.fediverse import FakeInstance, activity, deliver, note
from tests.helpers.inbox import Blog, block_domain
from tests.helpers.peers import until_true
from tests.helpers.posts import add_post_via_service
from tests.helpers.reader import flatten, thread

HTML = "text/html"


async def public_texts(fc: Instance, slug: str, permalink: str) -> str:
    """Every public surface of the thread, concatenated."""
    out = [str(await thread(fc, url=permalink))]
    for path, accept in ((f"/posts/{slug}", HTML),
                         (f"/posts/{slug}/replies", "application/activity+json"),
                         (f"/posts/{slug}/context", "application/activity+json")):
        resp = await fc.get(path, accept=accept)
        assert resp.status == 200
        out.append(await resp.text())
    return "\n".join(out)


async def published(fc: Instance, remote: FakeInstance, actor_name: str, post: str,
                    **note_args: Any) -> tuple[int, dict[str, Any]]:
    """A reply delivered to our inbox and served by its server at its id."""
    actor = remote.actors.get(actor_name) or remote.actor(actor_name)
    obj = remote.publish(note(actor, post, **note_args))
    resp = await deliver(fc.session, actor, f"{fc.url}/inbox", activity(actor, "Create", obj))
    assert resp.status == 202
    stored = await comment_store.by_ap_id(fc.rt.db.read, obj["id"])
    assert stored is not None
    return stored.id, obj


def test_schedule_favours_young_replies() -> None:
    """Given a reply stored at t, its checks come 1 h, 1 day, 1 week and 30 days after t,
    then every 90 days after the last check."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    assert recheck.next_check(t, t) == t + timedelta(hours=1)
    assert recheck.next_check(t, t + timedelta(hours=1)) == t + timedelta(days=1)
    assert recheck.next_check(t, t + timedelta(days=1, minutes=3)) == t + timedelta(weeks=1)
    assert recheck.next_check(t, t + timedelta(weeks=1)) == t + timedelta(days=30)
    late = t + timedelta(days=45)
    assert recheck.next_check(t, late) == late + timedelta(days=90)


async def test_deleted_and_narrowed_replies_leave_every_public_surface(
        blog: Blog, remote: FakeInstance, tmp_path: Path) -> None:
    """Given three shown replies, when one is deleted on its server (404, no Delete sent),
    one made followers-only and one left alone, then `comments recheck --post` prints
    deleted / private / unchanged, and only the third remains on any public surface."""
    fc = blog.instance
    gone_id, gone = await published(fc, remote, "alice", blog.post.ap_id,
                                    content="<p>soon deleted</p>")
    narrow_id, narrowed = await published(fc, remote, "bob", blog.post.ap_id,
                                          content="<p>soon followers-only</p>")
    kept_id, _kept = await published(fc, remote, "carol", blog.post.ap_id,
                                     content="<p>still here</p>")
    before = await public_texts(fc, blog.post.slug, blog.post.permalink)
    assert "soon deleted" in before and "soon followers-only" in before
    del remote.objects[gone["id"]]
    bob = remote.actors["bob"]
    remote.publish({**narrowed, "to": [bob.followers], "cc": []})
    config = write_config(fc, tmp_path)
    result = await run_cli("comments", "recheck", "--post", blog.post.slug, "--json",
                           "--config", config)
    assert (result.code, result.err) == (0, ""), result.err
    outcomes = {o["id"]: o["outcome"] for o in result.json()["comments"]}
    assert outcomes == {gone_id: "deleted", narrow_id: "private", kept_id: "unchanged"}
    after = await public_texts(fc, blog.post.slug, blog.post.permalink)
    assert "soon deleted" not in after and gone["id"] not in after
    assert "soon followers-only" not in after and narrowed["id"] not in after
    assert "still here" in after
    assert await comment_store.by_id(fc.rt.db.read, gone_id) is None
    assert await comment_store.is_tombstoned(fc.rt.db.read, gone["id"])
    moved = await comment_store.by_id(fc.rt.db.read, narrow_id)
    assert moved is not None and moved.visibility is Visibility.FOLLOWERS
    # Our GETs were signed as the blog, as every fetch of ours is.
    assert all("Signature" in r.headers for r in remote.fetched)


async def test_gone_with_replies_stays_a_tombstone(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply answered by another reply, when the first answers 410 on recheck,
    then it becomes a deleted placeholder keeping the answer threaded below it."""
    fc = blog.instance
    parent_id, parent = await published(fc, remote, "alice", blog.post.ap_id)
    child_id, _child = await published(fc, remote, "bob", parent["id"])
    remote.gone.add(parent["id"].removeprefix(remote.url))
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[parent_id])
    assert (outcome.outcome, outcome.detail) == ("deleted", "answered 410; tombstoned")
    stored = await comment_store.by_id(fc.rt.db.read, parent_id)
    assert stored is not None and stored.status is CommentStatus.DELETED
    [node] = (await thread(fc, url=blog.post.permalink))["comments"]
    assert node["deleted"] is True and [r["id"] for r in node["replies"]] == [child_id]


async def test_edits_and_content_warnings_are_applied(blog: Blog, remote: FakeInstance) -> None:
    """Given a shown reply, when its server now serves it with new text and a content
    warning (no Update reached us), then a recheck updates both and marks it edited."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id, content="<p>old</p>")
    remote.publish({**obj, "content": "<p>new words</p>", "summary": "spoilers",
                    "sensitive": True, "updated": "2099-01-01T00:00:00Z"})
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "edited"
    [node] = flatten((await thread(fc, url=blog.post.permalink))["comments"])
    assert (node["content"], node["summary"], node["sensitive"], node["edited"]) == (
        "<p>new words</p>", "spoilers", True, True)
    [again] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert again.outcome == "unchanged"


@pytest.mark.parametrize("status", [500, 502, 503, 401, 403])
async def test_errors_change_nothing(blog: Blog, remote: FakeInstance, status: int) -> None:
    """Given a shown reply, when its server answers 5xx (or refuses us), then the recheck
    reports an error and the reply is unchanged and still shown."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id)
    before = await comment_store.by_id(fc.rt.db.read, cid)
    remote.statuses[obj["id"].removeprefix(remote.url)] = status
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "error" and str(status) in outcome.detail
    assert await comment_store.by_id(fc.rt.db.read, cid) == before
    assert [c["id"] for c in (await thread(fc, url=blog.post.permalink))["comments"]] == [cid]


async def test_unreachable_server_changes_nothing(blog: Blog) -> None:
    """Given a reply whose server has gone away (connection refused), a recheck reports an
    error and keeps the reply."""
    fc = blog.instance
    peer = await FakeInstance().start()
    cid, _obj = await published(fc, peer, "alice", blog.post.ap_id)
    await peer.close()
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "error"
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None and stored.status is CommentStatus.APPROVED


async def test_a_document_with_another_id_changes_nothing(blog: Blog,
                                                          remote: FakeInstance) -> None:
    """Given a reply whose URL now serves a document with another id (or another author),
    the recheck refuses it and keeps the reply as it was."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id, content="<p>mine</p>")
    remote.objects[obj["id"]] = {**obj, "id": f"{remote.url}/objects/999",
                                 "content": "<p>hijacked</p>"}
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "error"
    eve = remote.actor("eve")
    remote.objects[obj["id"]] = {**obj, "attributedTo": eve.id, "content": "<p>hijacked</p>"}
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "error"
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None and stored.content == "<p>mine</p>"


@pytest.fixture
async def quiet(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    """A runtime on its own database with no server (so no housekeeping of its own runs),
    a server limit of 2 rechecks an hour, and one post."""
    settings = make_settings(tmp_path, free_port(),
                             federation={"recheck_per_host_per_hour": 2},
                             moderation={"policy": "none"})
    async with open_runtime(settings, clock=clock) as rt:
        await add_post_via_service(rt)
        yield rt


async def stored_from(rt: Runtime, remote: FakeInstance, post_ap_id: str, text: str) -> str:
    """A reply its server serves, imported the way a fetched reply is."""
    alice = remote.actors.get("alice") or remote.actor("alice")
    obj = remote.publish(note(alice, post_ap_id, content=text))
    fetched = await comments.fetch_object(rt, obj["id"], comments.Budget())
    assert fetched is not None
    result = await comments.import_fetched(rt, fetched, comments.Budget())
    assert result.reason == "created", result
    return str(obj["id"])


async def test_housekeeping_checks_on_schedule_within_limits(quiet: Runtime, clock: FakeClock,
                                                             remote: FakeInstance) -> None:
    """Given recheck_per_host_per_hour = 2 and three replies from one server, none is
    fetched before its first hour; an hour later a pass fetches two (the server's hourly
    limit), the third in the next hour; the deleted ones are then gone."""
    post = (await post_service.list_posts(quiet))[0]
    ids = [await stored_from(quiet, remote, post.ap_id, f"<p>n{i}</p>") for i in range(3)]
    for ap_id in ids:
        del remote.objects[ap_id]
    remote.fetched.clear()
    clock.advance(minutes=30)
    pacer = recheck.Pacer()
    assert await recheck.recheck_due(quiet, pacer) == []
    clock.advance(minutes=31)
    first = await recheck.recheck_due(quiet, pacer)
    assert [o.outcome for o in first] == ["deleted", "deleted"] and len(remote.fetched) == 2
    assert await recheck.recheck_due(quiet, pacer) == []
    clock.advance(minutes=61)
    [last] = await recheck.recheck_due(quiet, pacer)
    assert last.outcome == "deleted" and len(remote.fetched) == 3
    assert await comment_store.count_public(quiet.db.read, post.id) == 0


async def test_unchanged_replies_are_checked_again_later(quiet: Runtime, clock: FakeClock,
                                                         remote: FakeInstance) -> None:
    """Given a reply checked after its first hour, the next pass does not fetch it again
    until a day after it was stored; a total limit of 0 turns the passes off."""
    post = (await post_service.list_posts(quiet))[0]
    await stored_from(quiet, remote, post.ap_id, "<p>steady</p>")
    remote.fetched.clear()
    clock.advance(hours=1, minutes=1)
    pacer = recheck.Pacer()
    assert [o.outcome for o in await recheck.recheck_due(quiet, pacer)] == ["unchanged"]
    clock.advance(hours=12)
    assert await recheck.recheck_due(quiet, pacer) == []
    clock.advance(hours=12)
    assert [o.outcome for o in await recheck.recheck_due(quiet, pacer)] == ["unchanged"]
    assert len(remote.fetched) == 2
    off = dataclasses.replace(quiet.settings, federation=dataclasses.replace(
        quiet.settings.federation, recheck_per_hour=0))
    quiet.settings = off
    clock.advance(days=30)
    assert await recheck.recheck_due(quiet, pacer) == [] and len(remote.fetched) == 2


async def test_the_running_server_rechecks_by_itself(blog: Blog, remote: FakeInstance) -> None:
    """Given a running server and a reply deleted on its server, when an hour passes on
    its clock, then housekeeping removes the reply with no command run."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id)
    del remote.objects[obj["id"]]
    fc.clock.advance(hours=1, minutes=6)

    async def removed() -> bool:
        return await comment_store.by_id(fc.rt.db.read, cid) is None

    await until_true(removed, bound=10)


async def test_blocked_and_unavailable_servers_are_never_asked(blog: Blog,
                                                               remote: FakeInstance) -> None:
    """Given replies from a server marked unavailable by deliveries and one whose domain is
    then blocked with its content kept, when replies are due, then neither is fetched; the
    CLI recheck says why it skipped the unavailable one."""
    fc = blog.instance
    down = remote
    cid, _obj = await published(fc, down, "alice", blog.post.ap_id)
    async with fc.rt.db.transaction() as tx:
        await queue.save_host(tx, HostState(host="127.0.0.1", unavailable_since=fc.rt.now()))
    fc.clock.advance(hours=2)
    assert await recheck.recheck_due(fc.rt, recheck.Pacer()) == []
    [skipped] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert (skipped.outcome, skipped.detail) == (
        "skipped", "its server is marked unavailable or paused")
    assert down.fetched == []
    async with fc.rt.db.transaction() as tx:
        await queue.reset_hosts(tx, ["127.0.0.1"])
    await block_domain(fc.rt, "127.0.0.1")
    assert await recheck.recheck_due(fc.rt, recheck.Pacer()) == []
    [skipped] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert skipped.outcome == "skipped" and down.fetched == []


async def test_cli_names_ids_and_refuses_bad_input(blog: Blog, remote: FakeInstance,
                                                   tmp_path: Path) -> None:
    """Given one reply, `comments recheck ID` prints its outcome in a table; an unknown id
    is reported skipped; no selector, or two, is a usage error (exit 2)."""
    fc = blog.instance
    cid, _obj = await published(fc, remote, "alice", blog.post.ap_id)
    config = write_config(fc, tmp_path)
    result = await run_cli("comments", "recheck", str(cid), "999", "--config", config)
    assert result.code == 0, result.err
    assert "unchanged" in result.out and "no such comment" in result.out
    for argv in ((), ("--all", "--post", blog.post.slug), (str(cid), "--all")):
        bad = await run_cli("comments", "recheck", *argv, "--config", config)
        assert bad.code == 2 and bad.err.startswith("fedcomments: error:"), argv
    bad = await run_cli("comments", "recheck", "--post", "nope", "--config", config)
    assert bad.code == 2
    result = await run_cli("comments", "recheck", "--all", "--json", "--config", config)
    assert [o["outcome"] for o in result.json()["comments"]] == ["unchanged"]


async def test_admin_api_rechecks_the_same_way(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply deleted on its server, the admin API's recheck answers its outcome and
    refuses a malformed body with 400."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id)
    del remote.objects[obj["id"]]
    resp = await fc.admin("POST", "/api/v1/admin/comments/recheck", json={"ids": "1"})
    assert resp.status == 400
    resp = await fc.admin("POST", f"/api/v1/admin/comments/{cid}/recheck")
    assert resp.status == 200
    assert (await resp.json())["outcome"] == "deleted"
    resp = await fc.admin("POST", "/api/v1/admin/comments/recheck", json={"all": True})
    assert (resp.status, await resp.json()) == (200, {"comments": []})


async def test_private_reply_made_public_stays_private(blog: Blog, remote: FakeInstance) -> None:
    """Given a followers-only reply kept for the owner, when its server now serves it
    public, then the recheck never widens it."""
    fc = blog.instance
    cid, obj = await published(fc, remote, "alice", blog.post.ap_id, visibility="followers")
    remote.publish({**obj, "to": ["https://www.w3.org/ns/activitystreams#Public"]})
    [outcome] = await recheck.recheck(fc.rt, comment_ids=[cid])
    assert outcome.outcome == "unchanged"
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None and stored.visibility is Visibility.FOLLOWERS
