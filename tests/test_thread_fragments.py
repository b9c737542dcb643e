"""Threads assembled from stored per-comment fragments: the same JSON as a rendering from
scratch, through every kind of change, with stale fragments removed by the database itself."""

from __future__ import annotations

from typing import Any

from fedcomments.services import moderation, replies
from fedcomments.services.thread import get_thread, scratch_json
from fedcomments.store import threads as thread_store
from fedcomments.web.public_api import THREAD_CACHE
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, FakeInstance, activity, deliver, note
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import flatten, post_local, remote_reply, thread


async def reference(fc: Instance, post_id: int) -> dict[str, Any]:
    """The thread rendered from scratch: every comment and reaction read in full, with the
    images as they stand."""
    return await scratch_json(fc.rt, post_id)


async def stored(fc: Instance) -> dict[int, bytes]:
    """The fragments in the database, once the background writer is done."""
    await fc.server.app[THREAD_CACHE].fragments.flush()
    rows = await fc.rt.db.read.fetchall(
        "SELECT comment_id, body FROM comment_fragments WHERE body IS NOT NULL")
    return {r[0]: bytes(r[1]) for r in rows}


async def send(fc: Instance, who: FakeActor, doc: dict[str, Any]) -> None:
    resp = await deliver(fc.session, who, f"{fc.url}/inbox", doc)
    assert resp.status == 202, await resp.text()


async def comment_id(fc: Instance, ap_id: str) -> int:
    row = await fc.rt.db.read.fetchone("SELECT id FROM comments WHERE ap_id = ?", (ap_id,))
    assert row is not None
    return int(row[0])


async def test_assembled_thread_equals_scratch_rendering_through_changes(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a nested thread of fediverse, owner and reader comments (past max_depth, with
    a content warning, an attachment, likes, a rejected one, a followers-only one and a
    deleted one holding up replies), when it is read again after an edit, a like, an unlike,
    an actor's rename and a deletion, then every answer equals the rendering from scratch,
    each change removed exactly the fragments it touched, and nothing private is stored."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"max_depth": 2})
    post = await add_post_via_api(fc)
    alice, bob, carol = remote.actor("alice"), remote.actor("bob"), remote.actor("carol")
    first = note(alice, post["ap_id"], content="<p>First</p>", summary="spoiler", extra={
        "attachment": [{"type": "Document", "mediaType": "image/png",
                        "url": f"{remote.url}/files/cat.png", "name": "A cat"}]})
    await send(fc, alice, activity(alice, "Create", first))
    a = await comment_id(fc, first["id"])
    answer = await replies.owner_reply(fc.rt, a, "Thanks!")
    chain = [await remote_reply(fc, bob, answer.ap_id or "", content="<p>deep 1</p>")]
    for depth in range(2, 5):  # replies flattened below max_depth, naming whom they answer
        parent_ap = (await fc.rt.db.read.fetchone(
            "SELECT ap_id FROM comments WHERE id = ?", (chain[-1],)))[0]
        chain.append(await remote_reply(fc, carol if depth % 2 else bob, parent_ap,
                                        content=f"<p>deep {depth}</p>"))
    resp = await post_local(fc, post["id"], parent=str(a), name="Dora", text="Reader here",
                            website="https://dora.example/")
    assert resp.status == 201
    dora = (await resp.json())["comment"]["id"]
    spam = await remote_reply(fc, bob, post["ap_id"], content="<p>buy now</p>")
    await moderation.reject_comments(fc.rt, [spam])
    await remote_reply(fc, carol, post["ap_id"], content="<p>only followers</p>",
                       visibility="followers")
    # Likes reach our own objects only: the owner's answer and the reader's comment.
    like = activity(bob, "Like", answer.ap_id)
    await send(fc, bob, like)
    await send(fc, carol, activity(carol, "Like", answer.ap_id))
    await moderation.delete_comments(fc.rt, [chain[0]])  # a placeholder: replies hang below

    data = await thread(fc, id=str(post["id"]))
    assert data == await reference(fc, post["id"])
    assert data["count"] == 6
    assert data["comments"][0]["replies"][0]["reactions"]["likes"] == 2
    fragments = await stored(fc)
    public = {a, answer.id, dora, *chain}
    assert set(fragments) == public  # never the rejected or the followers-only reply
    assert not any(b"only followers" in f or b"buy now" in f for f in fragments.values())
    # Read back from the stored fragments alone (a fresh cache renders nothing).
    fresh = await get_thread(fc.rt, str(post["id"]))
    assert fresh.data == data

    async def after(change: str, touched: set[int]) -> None:
        before = await stored(fc)
        assert set(before) == public, change
        await changes[change]()
        left = await fc.rt.db.read.fetchall(
            "SELECT comment_id FROM comment_fragments WHERE body IS NOT NULL")
        assert {r[0] for r in left} == public - touched, change
        assert await thread(fc, id=str(post["id"])) == await reference(fc, post["id"]), change

    edited = {**first, "content": "<p>First, edited</p>", "updated": "2099-01-01T00:00:00Z"}
    unlike = activity(bob, "Undo", like)

    async def rename() -> None:
        async with fc.rt.db.transaction() as tx:
            await tx.execute("UPDATE actors SET name = 'Carol Renamed' WHERE ap_id = ?",
                             (carol.id,))

    changes = {
        "edit": lambda: send(fc, alice, activity(alice, "Update", edited)),
        "like": lambda: send(fc, bob, activity(bob, "Like", fc.rt.urls.comment(dora))),
        "unlike": lambda: send(fc, bob, unlike),
        # Carol wrote deep 3 and liked the owner's answer.
        "rename": rename,
    }
    await after("edit", {a})
    await after("like", {dora})
    await after("unlike", {answer.id})
    await after("rename", {chain[2], answer.id})
    final = await thread(fc, id=str(post["id"]))
    assert final["comments"][0]["content"] == "<p>First, edited</p>"
    liked = final["comments"][0]["replies"][0]["reactions"]
    assert liked["likes"] == 1 and [p["name"] for p in liked["people"]] == ["Carol Renamed"]
    # Past max_depth the chain is flat, each naming whom it answers (a placeholder, Bob,
    # Carol as she is called now).
    flat = {c["id"]: c for c in flatten(final["comments"])}
    assert [(flat[c]["depth"], (flat[c]["reply_to"] or {}).get("name")) for c in chain] == [
        (2, None), (2, "a deleted comment"), (2, flat[chain[1]]["author"]["name"]),
        (2, "Carol Renamed")]
    await moderation.delete_comments(fc.rt, [dora])
    assert dora not in await stored(fc)
    gone = await thread(fc, id=str(post["id"]))
    assert gone == await reference(fc, post["id"]) and gone["count"] == 5


async def test_refetched_actor_with_nothing_new_keeps_fragments_and_stamp(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a stored thread, when the commenter's actor row is written again with the same
    values (a refetch), then no fragment is dropped and the ETag stays; a new avatar drops
    that commenter's fragment and changes the ETag (hot-linked images: the URL is shown)."""
    fc: Instance = await make_instance(moderation={"policy": "none"}, media={"proxy": False})
    post = await add_post_via_api(fc)
    alice = remote.actor("alice")
    reply = await remote_reply(fc, alice, post["ap_id"])
    url = f"{fc.url}/api/v1/thread?id={post['id']}"
    etag = (await fc.session.get(url)).headers["ETag"]
    assert set(await stored(fc)) == {reply}
    async with fc.rt.db.transaction() as tx:
        await tx.execute("UPDATE actors SET name = name, icon = icon, url = url WHERE ap_id = ?",
                         (alice.id,))
    assert set(await stored(fc)) == {reply}
    assert (await fc.session.get(url)).headers["ETag"] == etag
    async with fc.rt.db.transaction() as tx:
        await tx.execute("UPDATE actors SET icon = 'https://files.example/new.png' "
                         "WHERE ap_id = ?", (alice.id,))
    assert await stored(fc) == {}
    changed = await fc.session.get(url)
    assert changed.headers["ETag"] != etag
    assert (await changed.json())["comments"][0]["author"]["avatar"] == (
        "https://files.example/new.png")


async def test_fragments_of_other_settings_or_code_are_not_used(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given fragments stored under another render key (the blog renamed in the config, or
    another version of the code), the thread renders them again rather than use them."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    answer_to = await remote_reply(fc, remote.actor("alice"), post["ap_id"])
    owner = await replies.owner_reply(fc.rt, answer_to, "Owner here")
    await thread(fc, id=str(post["id"]))
    await stored(fc)
    async with fc.rt.db.transaction() as tx:
        await tx.execute("UPDATE comment_fragments SET key = key + 1, "
                         "body = replace(body, 'Owner here', 'STALE')")
    fresh = await get_thread(fc.rt, str(post["id"]))
    assert b"STALE" not in fresh.body and b"Owner here" in fresh.body
    assert fresh.data == await reference(fc, post["id"])
    assert owner.id in {c["replies"][0]["id"] for c in fresh.data["comments"]}


async def test_a_fragment_rendered_before_a_change_is_not_stored(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given two comments read while their fragments are missing, when one of them is
    edited before the rendered fragments are stored, then only the other one's is stored
    (the thread moving on does not hold it back), and the next read renders the edited
    one from its new state."""
    from fedcomments.services.thread import ThreadCache, build_view

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    alice = remote.actor("alice")
    first = note(alice, post["ap_id"], content="<p>before</p>")
    await send(fc, alice, activity(alice, "Create", first))
    edited_id = await comment_id(fc, first["id"])
    other = await remote_reply(fc, alice, post["ap_id"], content="<p>other</p>")
    cache = ThreadCache()
    key = cache.key(fc.rt)
    read = await thread_store.read_thread(fc.rt.db.read,
                                          thread_store.PostRef(post_id=post["id"]), key)
    assert read is not None and {e.id for e in read.missing} == {edited_id, other}
    edited = {**first, "content": "<p>after</p>", "updated": "2099-01-01T00:00:00Z"}
    await send(fc, alice, activity(alice, "Update", edited))  # commits while rendering
    stale = await build_view(fc.rt, read, key, cache.fragments)
    await cache.fragments.flush()
    assert b"<p>before</p>" in stale.body
    kept = await fc.rt.db.read.fetchall(
        "SELECT comment_id, body FROM comment_fragments WHERE body IS NOT NULL")
    assert [r[0] for r in kept] == [other]
    data = await thread(fc, id=str(post["id"]))
    assert [c["content"] for c in data["comments"]] == ["<p>after</p>", "<p>other</p>"]
    assert data == await reference(fc, post["id"])
    # Again with a stored fragment that an edit cleared: read while cleared, edited again
    # before the store.
    assert set(await stored(fc)) == {edited_id, other}
    await send(fc, alice, activity(alice, "Update", {
        **edited, "content": "<p>again</p>", "updated": "2099-01-02T00:00:00Z"}))
    read = await thread_store.read_thread(fc.rt.db.read,
                                          thread_store.PostRef(post_id=post["id"]), key)
    assert read is not None and [e.id for e in read.missing] == [edited_id]
    await send(fc, alice, activity(alice, "Update", {
        **edited, "content": "<p>last</p>", "updated": "2099-01-03T00:00:00Z"}))
    await build_view(fc.rt, read, key, cache.fragments)
    assert set(await stored(fc)) == {other}
    data = await thread(fc, id=str(post["id"]))
    assert data["comments"][0]["content"] == "<p>last</p>"
    assert data == await reference(fc, post["id"])


async def test_profile_update_of_a_commenter_with_stored_fragments(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a commenter whose comment's fragment is stored, when their Update{Person}
    renames them (the actor is upserted), then the update succeeds and the thread shows
    the new name (the fragment trigger no longer aborts under the upsert)."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    gus = remote.actor("gus")
    gus.extra = {"icon": None}
    reply = await remote_reply(fc, gus, post["ap_id"])
    await thread(fc, id=str(post["id"]))
    assert set(await stored(fc)) == {reply}
    gus.name = "Gus Renamed"
    fc.clock.advance(minutes=10)  # past the refetch interval of Update{Person}
    await send(fc, gus, activity(gus, "Update", gus.document()))
    row = await fc.rt.db.read.fetchone("SELECT name FROM actors WHERE ap_id = ?", (gus.id,))
    assert row[0] == "Gus Renamed"
    data = await thread(fc, id=str(post["id"]))
    assert data["comments"][0]["author"]["name"] == "Gus Renamed"
