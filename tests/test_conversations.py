"""Whole conversations: our posts' FEP-7888 `context` collections as others read them, and
the replies that never reached us found in peers' context (FEP-f228) or `replies`
collections, imported from their own servers at the right depth, with what is missing
counted and explained."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.services import backfill, replies
from fedcomments.store import comments as comment_store
from fedcomments.store.comments import NewComment
from tests.conftest import Instance, InstanceFactory
from tests.helpers.admin import run_cli, write_config
from tests.helpers.fediverse import FakeActor, FakeInstance, activity, note
from tests.helpers.inbox import Blog, block_domain, outcome, start_blog_with_post
from tests.helpers.peers import until_true
from tests.helpers.reader import flatten, thread

AS2 = "application/activity+json"


async def as2(fc: Instance, path: str, **headers: str) -> tuple[int, Any, Any]:
    resp = await fc.get(path, headers=headers)
    body = await resp.json(content_type=None) if resp.status == 200 else None
    return resp.status, body, resp.headers


def context_peer(remote: FakeInstance, items: list[str], *, path: str = "/contexts/1",
                 page_size: int = 2) -> str:
    """Serve a FEP-f228 collection of posts the way NodeBB and Mitra do: an
    OrderedCollection whose first page is a link, pages chained with `next`."""
    url = f"{remote.url}{path}"
    pages = [items[i:i + page_size] for i in range(0, len(items), page_size)] or [[]]
    for n, chunk in enumerate(pages, 1):
        page: dict[str, Any] = {"@context": "https://www.w3.org/ns/activitystreams",
                                "id": f"{url}/page/{n}", "type": "OrderedCollectionPage",
                                "partOf": url, "orderedItems": chunk}
        if n < len(pages):
            page["next"] = f"{url}/page/{n + 1}"
        remote.serve(f"{path}/page/{n}", page)
    remote.serve(path, {"@context": "https://www.w3.org/ns/activitystreams", "id": url,
                        "type": "OrderedCollection", "totalItems": len(items),
                        "attributedTo": f"{remote.url}/users/alice", "first": f"{url}/page/1"})
    return url


async def deliver_reply(blog: Blog, actor: FakeActor, in_reply_to: str,
                        **extra: Any) -> dict[str, Any]:
    obj = actor.instance.publish(note(actor, in_reply_to, extra=extra or None))
    assert await outcome(await blog.send(actor, activity(actor, "Create", obj))) == "created"
    return obj


async def depths(blog: Blog) -> dict[str, int]:
    """Each comment of the public thread by ActivityPub id, with its depth."""
    data = await thread(blog.instance, url=blog.post.permalink)
    return {c["ap_id"]: c["depth"] for c in flatten(data["comments"])}


def cli_config(fc: Instance, directory: Path) -> str:
    """A config file for CLI runs beside the server: its database, and its moderation."""
    path = write_config(fc, directory)
    with open(path, "a", encoding="utf-8") as out:
        out.write(f'[moderation]\npolicy = "{fc.settings.moderation.policy}"\n')
    return path


async def show(fc: Instance, config: str, ref: str) -> dict[str, Any]:
    result = await run_cli("posts", "show", ref, "--json", "--config", config)
    assert result.code == 0, result.err
    return dict(result.json()["replies"])


# --- our context collections ------------------------------------------------------------


async def test_context_collection_lists_the_public_thread(blog: Blog,
                                                          remote: FakeInstance) -> None:
    """Given a post with a public reply, our answer, a reader comment, a private reply, a
    pending one and a #nobot one, when a peer dereferences the post's `context`, then it
    gets an OrderedCollection owned by the blog actor listing the post and the three
    public objects, oldest first; the Article and our Note name that collection."""
    fc = blog.instance
    alice, bob, dan = (remote.actor(n) for n in ("alice", "bob", "dan"))
    shown = await deliver_reply(blog, alice, blog.post.ap_id)
    await deliver_reply(blog, bob, blog.post.ap_id, to=[bob.followers], cc=[])
    dan.extra = {"summary": "<p>#nobot</p>"}
    withheld = await deliver_reply(blog, dan, blog.post.ap_id)
    stored = await comment_store.by_ap_id(fc.rt.db.read, shown["id"])
    assert stored is not None
    fc.clock.advance(minutes=1)  # our answer and the reader come after the replies
    answer = await replies.owner_reply(fc.rt, stored.id, "Thanks")
    later = fc.rt.now() + timedelta(minutes=1)
    async with fc.rt.db.transaction() as tx:
        reader = await comment_store.insert(tx, NewComment(
            post_id=blog.post.id, parent_id=None, origin=Origin.LOCAL,
            visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED, content="<p>hi</p>",
            published_at=later, author_name="Reader"), fc.rt.now())
        await comment_store.insert(tx, NewComment(
            post_id=blog.post.id, parent_id=None, origin=Origin.LOCAL,
            visibility=Visibility.PUBLIC, status=CommentStatus.PENDING, content="<p>wait</p>",
            published_at=fc.rt.now(), author_name="Pending"), fc.rt.now())
    status, doc, headers = await as2(fc, f"/posts/{blog.post.slug}/context")
    assert status == 200 and headers["Content-Type"].startswith(AS2)
    context_id = fc.rt.urls.post_context(blog.post.slug)
    assert (doc["id"], doc["type"], doc["attributedTo"], doc["totalItems"]) == (
        context_id, "OrderedCollection", fc.rt.urls.actor, 4)
    assert doc["first"]["orderedItems"] == [blog.post.ap_id, shown["id"], answer.ap_id,
                                            fc.rt.urls.comment(reader)]
    assert withheld["id"] not in str(doc)
    _, article, _ = await as2(fc, f"/posts/{blog.post.slug}")
    _, answer_note, _ = await as2(fc, f"/comments/{answer.id}")
    assert article["context"] == answer_note["context"] == context_id
    # Conditional GET: the same thread state answers 304.
    resp = await fc.get(f"/posts/{blog.post.slug}/context",
                        headers={"If-None-Match": headers["ETag"]})
    assert resp.status == 304


async def test_context_collection_pages_and_refuses_bad_pages(blog: Blog) -> None:
    """Given 150 public comments, the collection's first page holds 100 items and links the
    second, which holds the rest; a bad page number is a 400; an unknown post a 404."""
    fc = blog.instance
    async with fc.rt.db.transaction() as tx:
        for i in range(150):
            await comment_store.insert(tx, NewComment(
                post_id=blog.post.id, parent_id=None, origin=Origin.LOCAL,
                visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED,
                content=f"<p>{i}</p>", published_at=fc.rt.now(), author_name="R"), fc.rt.now())
    slug = blog.post.slug
    _, doc, _ = await as2(fc, f"/posts/{slug}/context")
    assert doc["totalItems"] == 151 and len(doc["first"]["orderedItems"]) == 100
    assert doc["first"]["next"].endswith(f"/posts/{slug}/context?page=2")
    status, page, _ = await as2(fc, f"/posts/{slug}/context?page=2")
    assert status == 200 and len(page["orderedItems"]) == 51 and "next" not in page
    assert page["partOf"] == fc.rt.urls.post_context(slug)
    assert (await fc.get(f"/posts/{slug}/context?page=x")).status == 400
    assert (await fc.get("/posts/nope/context")).status == 404


# --- reading others' conversations --------------------------------------------------------


async def test_fep7888_context_brings_in_an_undelivered_reply_to_a_reply(
        make_instance: InstanceFactory, remote: FakeInstance, tmp_path: Path) -> None:
    """Given alice's reply (delivered) naming her server's context collection, which lists
    bob's answer to her that never reached us, when `posts backfill` runs while bob's note
    cannot be fetched, then `posts show` counts 1 held, 2 known and names bob's note
    (fetch failed); once it is served, backfill imports it at depth 1 under alice's reply
    and `posts show` counts 2 held, 2 known."""
    blog = await start_blog_with_post(make_instance, federation={"backfill": False})
    fc = blog.instance
    alice, bob = remote.actor("alice"), remote.actor("bob")
    context = f"{remote.url}/contexts/1"
    first = await deliver_reply(blog, alice, blog.post.ap_id, context=context)
    second = note(bob, first["id"], content="<p>never delivered</p>",
                  extra={"context": context})
    context_peer(remote, [blog.post.ap_id, first["id"], second["id"]])
    config = cli_config(fc, tmp_path)
    assert await show(fc, config, blog.post.slug) == {
        "held": 1, "known_elsewhere": 1, "not_held": 0, "missing": []}
    result = await run_cli("posts", "backfill", blog.post.slug, "--json", "--config", config)
    assert result.code == 0, result.err
    assert result.json()["missing"] == [{"id": second["id"], "reason": "fetch failed"}]
    before = await show(fc, config, blog.post.slug)
    assert (before["held"], before["known_elsewhere"], before["not_held"]) == (1, 2, 1)
    assert [(m["id"], m["reason"], m["listed_by"]) for m in before["missing"]] == [
        (second["id"], "fetch failed", context)]
    remote.publish(second)
    result = await run_cli("posts", "backfill", blog.post.slug, "--config", config)
    assert result.code == 0 and f"imported {second['id']}" in result.out
    assert await depths(blog) == {first["id"]: 0, second["id"]: 1}
    after = await show(fc, config, blog.post.slug)
    assert after == {"held": 2, "known_elsewhere": 2, "not_held": 0, "missing": []}
    stored = await comment_store.by_ap_id(fc.rt.db.read, second["id"])
    assert stored is not None and stored.actor is not None and stored.actor.ap_id == bob.id
    # Each object came from its own origin, by id, with our signature.
    assert all("Signature" in r.headers for r in remote.fetched)


async def test_mastodon_replies_collection_is_walked_in_the_background(
        blog: Blog, remote: FakeInstance, tmp_path: Path) -> None:
    """Given alice's reply whose `replies` collection (Mastodon's shape: an embedded first
    page pointing at the page of other accounts' replies) counts one reply we lack, when
    it arrives, then our inbox answers 202 while that page is still held back; `posts
    show` counts 1 held, 2 known; when the page is served, bob's reply appears at depth 1
    and the counts are 2 and 2."""
    fc = blog.instance
    alice, bob = remote.actor("alice"), remote.actor("bob")
    obj_id = remote.new_id()
    replies_id = f"{obj_id}/replies"
    page_path = replies_id.removeprefix(remote.url) + "/others"
    bobs = remote.publish(note(bob, obj_id, content="<p>from bob</p>"))
    collection = {"id": replies_id, "type": "Collection", "totalItems": 1,
                  "first": {"type": "CollectionPage", "partOf": replies_id,
                            "next": f"{remote.url}{page_path}", "items": []}}
    remote.serve(replies_id.removeprefix(remote.url),
                 {"@context": "https://www.w3.org/ns/activitystreams", **collection})
    remote.serve(page_path, {
        "@context": "https://www.w3.org/ns/activitystreams", "type": "CollectionPage",
        "id": f"{remote.url}{page_path}", "partOf": replies_id, "items": [bobs["id"]]})
    gate = remote.gate(page_path)
    first = note(alice, blog.post.ap_id, extra={"id": obj_id, "replies": collection})
    remote.publish(first)
    assert await outcome(await blog.send(alice, activity(alice, "Create", first))) == "created"
    # The backfill is under way and waits for that page; the sender already has its 202.
    await asyncio.wait_for(gate.arrived.wait(), 10)
    config = cli_config(fc, tmp_path)
    before = await show(fc, config, blog.post.slug)
    assert (before["held"], before["known_elsewhere"]) == (1, 2)
    gate.release.set()

    async def arrived() -> bool:
        return await comment_store.by_ap_id(fc.rt.db.read, bobs["id"]) is not None

    await until_true(arrived)
    await fc.rt.backfill_jobs.idle()
    assert await depths(blog) == {obj_id: 0, bobs["id"]: 1}
    after = await show(fc, config, blog.post.slug)
    assert (after["held"], after["known_elsewhere"], after["missing"]) == (2, 2, [])


async def test_context_read_on_arrival_imports_siblings_and_ancestors(
        blog: Blog, remotes: list[FakeInstance]) -> None:
    """Given a reply-to-a-reply delivered from one server whose parent (on another server)
    we lack, and a context collection listing a sibling we also lack, when it arrives,
    then its parent is fetched at once and the sibling in the background, each under the
    right parent."""
    fc = blog.instance
    one, two = remotes
    alice, bob, carol = one.actor("alice"), two.actor("bob"), one.actor("carol")
    context = f"{one.url}/contexts/7"
    parent = one.publish(note(alice, blog.post.ap_id, extra={"context": context}))
    sibling = one.publish(note(carol, parent["id"], extra={"context": context}))
    child = two.publish(note(bob, parent["id"], extra={"context": context}))
    context_peer(one, [blog.post.ap_id, parent["id"], child["id"], sibling["id"]],
                 path="/contexts/7")
    assert await outcome(await blog.send(bob, activity(bob, "Create", child))) == "created"

    async def complete() -> bool:
        return await comment_store.by_ap_id(fc.rt.db.read, sibling["id"]) is not None

    await until_true(complete)
    assert await depths(blog) == {parent["id"]: 0, child["id"]: 1, sibling["id"]: 1}


async def test_what_is_not_imported_is_explained(make_instance: InstanceFactory,
                                                 remotes: list[FakeInstance],
                                                 tmp_path: Path) -> None:
    """Given a context collection listing a followers-only reply, one from a blocked
    server, one whose chain of ancestors is deeper than we follow, and a reply in another
    conversation, when backfill runs, then the first three are reported with why
    (private, blocked, too deep), the fourth is not counted, and none of them is shown."""
    blog = await start_blog_with_post(make_instance, federation={"backfill": False})
    fc = blog.instance
    one, two = remotes
    two.host = "localhost"
    alice, bob, mallory = one.actor("alice"), one.actor("bob"), two.actor("mallory")
    context = f"{one.url}/contexts/1"
    first = await deliver_reply(blog, alice, blog.post.ap_id, context=context)
    private = one.publish(note(bob, first["id"], visibility="followers"))
    blocked = two.publish(note(mallory, first["id"]))
    await block_domain(fc.rt, "localhost")
    parent = "https://elsewhere.invalid/unrelated"
    for _ in range(20):
        deep = one.publish(note(bob, parent))
        parent = deep["id"]
    other_root = one.publish(note(bob, None))
    unrelated = one.publish(note(bob, other_root["id"]))
    context_peer(one, [blog.post.ap_id, first["id"], private["id"], blocked["id"], deep["id"],
                       unrelated["id"]], page_size=10)
    report = await backfill.backfill_post(fc.rt, blog.post.id)
    assert report.imported == []
    assert report.missing == {private["id"]: "private", blocked["id"]: "blocked",
                              deep["id"]: "too deep"}
    assert two.hits == []
    config = cli_config(fc, tmp_path)
    shown = await show(fc, config, blog.post.slug)
    assert {m["id"]: m["reason"] for m in shown["missing"]} == report.missing
    assert unrelated["id"] not in str(shown)
    assert await depths(blog) == {first["id"]: 0}


async def test_a_context_that_is_not_this_conversation_is_ignored(
        make_instance: InstanceFactory, remote: FakeInstance) -> None:
    """Given a reply naming a context collection that lists neither our post nor any reply
    we hold, backfill imports nothing from it, even replies to our post."""
    blog = await start_blog_with_post(make_instance, federation={"backfill": False})
    alice, bob = remote.actor("alice"), remote.actor("bob")
    context = f"{remote.url}/contexts/9"
    await deliver_reply(blog, alice, blog.post.ap_id, context=context)
    sneaky = remote.publish(note(bob, blog.post.ap_id))
    context_peer(remote, [f"{remote.url}/objects/elsewhere", sneaky["id"]], path="/contexts/9")
    report = await backfill.backfill_post(blog.rt, blog.post.id)
    assert report.imported == [] and report.missing == {}
    assert await comment_store.by_ap_id(blog.rt.db.read, sneaky["id"]) is None


async def test_pages_on_another_origin_are_not_followed(
        make_instance: InstanceFactory, remotes: list[FakeInstance]) -> None:
    """Given a context collection whose `next` page lives on another server, backfill
    reads the first page only: the other server is never asked."""
    blog = await start_blog_with_post(make_instance, federation={"backfill": False})
    one, two = remotes
    two.host = "localhost"
    alice = one.actor("alice")
    context = f"{one.url}/contexts/1"
    first = await deliver_reply(blog, alice, blog.post.ap_id, context=context)
    one.serve("/contexts/1", {
        "@context": "https://www.w3.org/ns/activitystreams", "id": context,
        "type": "OrderedCollection", "first": {
            "type": "OrderedCollectionPage", "orderedItems": [blog.post.ap_id, first["id"]],
            "next": f"{two.url}/contexts/1?page=2"}})
    two.serve("/contexts/1", {"type": "OrderedCollectionPage", "orderedItems": []})
    report = await backfill.backfill_post(blog.rt, blog.post.id)
    assert report.collections == [context] and two.hits == []


async def test_admin_api_backfills_and_shows_the_counts(make_instance: InstanceFactory,
                                                        remote: FakeInstance) -> None:
    """Given alice's reply whose context lists bob's answer, the admin API's backfill
    imports it and its post answers the counts."""
    blog = await start_blog_with_post(make_instance, federation={"backfill": False})
    fc = blog.instance
    alice, bob = remote.actor("alice"), remote.actor("bob")
    context = f"{remote.url}/contexts/1"
    first = await deliver_reply(blog, alice, blog.post.ap_id, context=context)
    second = remote.publish(note(bob, first["id"]))
    context_peer(remote, [blog.post.ap_id, first["id"], second["id"]])
    resp = await fc.admin("POST", f"/api/v1/admin/posts/{blog.post.slug}/backfill")
    assert resp.status == 200
    data = await resp.json()
    assert data["imported"] == [second["id"]] and data["replies"]["held"] == 2
    resp = await fc.admin("GET", f"/api/v1/admin/posts/{blog.post.id}")
    assert (await resp.json())["replies"]["known_elsewhere"] == 2
    resp = await fc.admin("POST", "/api/v1/admin/posts/nope/backfill")
    assert resp.status == 404
