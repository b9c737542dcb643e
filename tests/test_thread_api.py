"""GET /api/v1/thread: the public thread by permalink or id, caching headers, CORS, queries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fedcomments.services import moderation, replies
from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance, activity, deliver
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import flatten, post_local, remote_reply, thread

BLOG = "https://blog.example"


@contextlib.asynccontextmanager
async def traced_reads(fc: Instance) -> AsyncIterator[list[str]]:
    """Every SQL statement the read connection runs inside the block, in order."""
    statements: list[str] = []
    raw = fc.rt.db._reader  # the read connection: tracing it is the only way to count
    assert raw is not None
    await raw.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        await raw.set_trace_callback(None)


async def test_thread_nests_fediverse_owner_and_reader_comments(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a fediverse reply, the owner's answer to it and a reader's reply to that, the
    thread (by permalink or id) nests them and counts them; private replies never appear."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    alice = remote.actor("alice")
    reply_id = await remote_reply(fc, alice, post["ap_id"], content="<p>Great post</p>")
    answer = await replies.owner_reply(fc.rt, reply_id, "Thanks Alice!")
    resp = await post_local(fc, post["id"], parent=str(answer.id), name="Bob", text="Agreed.")
    assert resp.status == 201, await resp.text()
    await remote_reply(fc, alice, post["ap_id"], content="<p>secret</p>", visibility="followers")
    await remote_reply(fc, alice, post["ap_id"], content="<p>dm</p>", visibility="direct",
                       mention=fc.rt.urls.actor)
    by_url = await thread(fc, url=post["url"])
    by_id = await thread(fc, id=str(post["id"]))
    assert by_url == by_id
    assert by_url["post"]["title"] == "A" and by_url["post"]["ap_id"] == post["ap_id"]
    assert by_url["count"] == 3
    [top] = by_url["comments"]
    assert top["author"]["handle"].startswith("@alice@")
    assert top["content"] == "<p>Great post</p>"
    [owner] = top["replies"]
    assert owner["origin"] == "owner" and owner["author"]["kind"] == "owner"
    assert "Thanks Alice!" in owner["content"]
    [bob] = owner["replies"]
    assert (bob["author"]["name"], bob["content"], bob["depth"]) == ("Bob", "<p>Agreed.</p>", 2)
    text = str(by_url)
    assert "secret" not in text and "dm" not in text


async def test_permalink_variants_and_errors(instance: Instance) -> None:
    """Given a post, its permalink with or without the trailing slash or a fragment finds it;
    unknown posts are 404, a missing parameter 400, a deleted post 410."""
    post = await add_post_via_api(instance)
    for url in ("https://blog.example/a", "https://blog.example/a/#comments", post["ap_id"]):
        assert (await thread(instance, url=url))["post"]["id"] == post["id"]
    resp = await instance.session.get(f"{instance.url}/api/v1/thread",
                                      params={"url": "https://blog.example/nope/"})
    assert resp.status == 404
    resp = await instance.session.get(f"{instance.url}/api/v1/thread")
    assert resp.status == 400 and (await resp.json())["field"] == "url"
    await instance.admin("DELETE", f"/api/v1/admin/posts/{post['id']}")
    resp = await instance.session.get(f"{instance.url}/api/v1/thread", params={"url": post["url"]})
    assert resp.status == 410


async def test_etag_304_and_change(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a thread read once, the same ETag answers 304 with no body; after a new comment
    the ETag changes and the new comment is there at once."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"cache_max_age": 30})
    post = await add_post_via_api(fc)
    url = f"{fc.url}/api/v1/thread?id={post['id']}"
    first = await fc.session.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=30"
    assert etag.startswith('"') and etag.endswith('"')
    again = await fc.session.get(url, headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag
    weak = await fc.session.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status == 304
    assert (await post_local(fc, post["id"], text="New!")).status == 201
    changed = await fc.session.get(url, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert [c["content"] for c in (await changed.json())["comments"]] == ["<p>New!</p>"]


async def test_cli_change_in_another_connection_is_seen(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a cached thread, a change committed by another process (the CLI approving a
    comment) shows on the next read."""
    from fedcomments.runtime import open_runtime

    fc: Instance = await make_instance(moderation={"policy": "all"})
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], text="Waiting")
    comment_id = (await resp.json())["comment"]["id"]
    assert (await thread(fc, id=str(post["id"])))["count"] == 0
    async with open_runtime(fc.settings) as cli:
        await moderation.approve_comments(cli, [comment_id])
    assert (await thread(fc, id=str(post["id"])))["count"] == 1


async def test_pending_rejected_and_private_stay_hidden(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given pending, rejected and approved comments, only approved public ones are listed,
    and a reply under a rejected comment moves to the top level."""
    fc: Instance = await make_instance(moderation={"policy": "all"})
    post = await add_post_via_api(fc)
    bob = remote.actor("bob")
    first = await remote_reply(fc, bob, post["ap_id"], content="<p>spam</p>")
    await moderation.reject_comments(fc.rt, [first])
    stored = await fc.rt.db.read.fetchone("SELECT ap_id FROM comments WHERE id = ?", (first,))
    child = await remote_reply(fc, bob, stored[0], content="<p>child</p>")
    await remote_reply(fc, bob, post["ap_id"], content="<p>pending</p>")
    await moderation.approve_comments(fc.rt, [child])
    data = await thread(fc, id=str(post["id"]))
    assert [(c["id"], c["depth"], c["content"]) for c in flatten(data["comments"])] == [
        (child, 0, "<p>child</p>")]
    assert data["count"] == 1


async def test_cors_only_for_blog_origins(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given [server] blog_origins, the thread grants CORS to that origin only, and the
    preflight for posting a comment names the methods and headers the widget uses."""
    fc: Instance = await make_instance(server={"blog_origins": [BLOG]})
    post = await add_post_via_api(fc)
    url = f"{fc.url}/api/v1/thread?id={post['id']}"
    ok = await fc.session.get(url, headers={"Origin": BLOG})
    assert ok.headers["Access-Control-Allow-Origin"] == BLOG
    assert "ETag" in ok.headers["Access-Control-Expose-Headers"]
    assert "Origin" in ok.headers["Vary"]
    other = await fc.session.get(url, headers={"Origin": "https://evil.example"})
    assert other.status == 200 and "Access-Control-Allow-Origin" not in other.headers
    pre = await fc.session.options(f"{fc.url}/api/v1/comments", headers={
        "Origin": BLOG, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == BLOG
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
    bad = await fc.session.options(f"{fc.url}/api/v1/comments", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in bad.headers


async def test_thread_is_read_with_a_fixed_number_of_queries(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given 30 comments with reactions, a cold read runs the same few queries as a thread
    of one (never one per comment), a read once their fragments are stored reads no comment
    columns, and a warm read runs only the change check."""
    from fedcomments.services.thread import get_thread
    from fedcomments.web.public_api import THREAD_CACHE

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    alice = remote.actor("alice")
    alice.extra = {"icon": None}  # no avatar to fetch in the background while reads are counted
    parent = await remote_reply(fc, alice, post["ap_id"])
    for i in range(29):
        resp = await post_local(fc, post["id"], parent=str(parent), name=f"R{i}",
                                text=f"comment {i}", wait=61)
        assert resp.status == 201, await resp.text()
    async with traced_reads(fc) as statements:
        data = await thread(fc, id=str(post["id"]))
        cold = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
        await fc.server.app[THREAD_CACHE].fragments.flush()
        statements.clear()
        uncached = await get_thread(fc.rt, str(post["id"]))  # no cache: a full read
        stored = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        statements.clear()
        await thread(fc, id=str(post["id"]))
        warm = list(statements)
    assert data["count"] == 30 and uncached.data == data
    # data_version, the post (a first-seen spelling), then in one trip and one snapshot:
    # data_version, the post, the thread's rows, the comments whose fragment is missing,
    # their reactions, the post's, and the images (emoji, thumbnails) they show.
    assert len(cold) == 9, cold
    assert sum("SELECT c.id, c.parent_id, c.status = 'deleted', f.body" in s for s in cold) == 1
    assert sum("f.body IS NULL OR f.key" in s for s in cold) == 1
    # With every fragment stored: the post, the rows with their fragments, the post's
    # reactions (and data_version); no comment columns beyond the thread's shape.
    assert len(stored) == 3, stored
    assert not any("c.content" in s or "f.body IS NULL" in s for s in stored), stored
    # Warm: the change check, and the post's stamp since fragments were committed meanwhile.
    assert 1 <= len(warm) <= 2 and "data_version" in warm[0], warm
    assert not any("FROM comments" in s or "FROM reactions" in s for s in warm), warm


async def test_concurrent_reads_share_one_change_check(instance: Instance) -> None:
    """Given 50 reads of a cached thread at once, they share one or two data_version checks
    and all get the same view."""
    from fedcomments.services.thread import get_thread
    from fedcomments.web.public_api import THREAD_CACHE

    post = await add_post_via_api(instance)
    cache = instance.server.app[THREAD_CACHE]
    first = await get_thread(instance.rt, str(post["id"]), cache)
    async with traced_reads(instance) as statements:
        views = await asyncio.gather(*(get_thread(instance.rt, str(post["id"]), cache)
                                       for _ in range(50)))
    assert {v.etag for v in views} == {first.etag}
    assert 1 <= len([s for s in statements if "data_version" in s]) <= 2
    assert len(statements) <= 2


async def test_openapi_describes_the_reader_api(instance: Instance) -> None:
    """Given the OpenAPI document, every public route under /api/v1 is described with its
    methods."""
    resp = await instance.get("/api/v1/openapi.json", accept="application/json")
    paths = (await resp.json())["paths"]
    served: dict[str, set[str]] = {}
    for route in instance.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if (path.startswith("/api/v1/") and "/admin/" not in path
                and route.method not in ("HEAD", "OPTIONS") and path != "/api/v1/openapi.json"):
            served.setdefault(path, set()).add(route.method.lower())
    assert served == {"/api/v1/thread": {"get"}, "/api/v1/form": {"get"},
                      "/api/v1/comments": {"post"},
                      "/api/v1/comments/{id}": {"get", "patch", "delete"},
                      "/api/v1/interact": {"post"}}
    for path, methods in served.items():
        assert methods <= set(paths[path]), path


async def test_cache_survives_unrelated_writes_and_follows_related_ones(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a cached thread, a comment on another post costs one stamp query and no rebuild;
    a renamed commenter, a reaction or a retitled post shows on the next read."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    a = await add_post_via_api(fc)
    b = await add_post_via_api(fc, "b")
    alice = remote.actor("alice")
    await remote_reply(fc, alice, a["ap_id"])
    first = await thread(fc, id=str(a["id"]))
    assert (await post_local(fc, b["id"], text="elsewhere")).status == 201
    async with traced_reads(fc) as statements:
        assert await thread(fc, id=str(a["id"])) == first
    assert not any("FROM comments" in s for s in statements), statements
    async with fc.rt.db.transaction() as tx:
        await tx.execute("UPDATE actors SET name = 'Alice Renamed' WHERE ap_id = ?", (alice.id,))
    assert (await thread(fc, id=str(a["id"])))["comments"][0]["author"]["name"] == "Alice Renamed"
    bob = remote.actor("bob")
    resp = await deliver(fc.session, bob, f"{fc.url}/inbox", activity(bob, "Like", a["ap_id"]))
    assert resp.status == 202
    assert (await thread(fc, id=str(a["id"])))["reactions"]["likes"] == 1
    await fc.admin("PUT", f"/api/v1/admin/posts/{a['id']}",
                   json={"url": a["url"], "title": "A, retitled"})
    assert (await thread(fc, id=str(a["id"])))["post"]["title"] == "A, retitled"


async def test_every_spelling_of_a_post_shares_one_rendering(instance: Instance) -> None:
    """Given a thread rendered once, asking for it by permalink with a fragment, without the
    trailing slash or by ActivityPub id renders nothing again."""
    post = await add_post_via_api(instance)
    first = await instance.session.get(f"{instance.url}/api/v1/thread?id={post['id']}")
    async with traced_reads(instance) as statements:
        for url in (f"{post['url']}#c1", f"{post['url']}#c2", post["url"].rstrip("/"),
                    post["ap_id"]):
            resp = await instance.session.get(f"{instance.url}/api/v1/thread",
                                              params={"url": url})
            assert resp.headers["ETag"] == first.headers["ETag"], url
    assert not any("FROM comments" in s or "FROM reactions" in s for s in statements)


async def test_concurrent_reads_after_a_change_render_once(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a busy thread that just changed, 30 reads at once share one rendering (one query
    of the comments), and all see the new comment."""
    from fedcomments.services.thread import get_thread
    from fedcomments.web.public_api import THREAD_CACHE

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    cache = fc.server.app[THREAD_CACHE]
    await get_thread(fc.rt, str(post["id"]), cache)
    assert (await post_local(fc, post["id"], text="News")).status == 201
    async with traced_reads(fc) as statements:
        views = await asyncio.gather(*(get_thread(fc.rt, str(post["id"]), cache)
                                       for _ in range(30)))
    assert {v.data["count"] for v in views} == {1} and len({v.etag for v in views}) == 1
    assert len({id(v) for v in views}) == 1
    assert sum("FROM comments c LEFT JOIN comment_fragments" in s for s in statements) == 1
