"""What repliers consent to: FEP-5feb's `indexable: false` (shown, marked data-nosnippet),
opt-out hashtags such as #nobot and non-discoverable unlisted replies (kept for the owner
only), and a profile Update that changes it for the replies already stored."""

from __future__ import annotations

from typing import Any

import pytest

from fedcomments.config import settings_from_mapping
from fedcomments.errors import ConfigError
from fedcomments.model import Visibility
from fedcomments.services import actors, moderation, replies
from fedcomments.store import comments as comment_store
from fedcomments.web.public_api import THREAD_CACHE
from tests.conftest import Instance
from tests.helpers.fediverse import PUBLIC, FakeActor, FakeInstance, activity, deliver, note
from tests.helpers.inbox import Blog, outcome, start_blog_with_post
from tests.helpers.reader import flatten, remote_reply, thread

HTML = "text/html"


async def public_surfaces(fc: Instance, slug: str, post_url: str) -> dict[str, str]:
    """Every public surface of a post's thread, as text: thread JSON, page, replies and
    context collections."""
    texts = {"thread": str(await thread(fc, url=post_url))}
    for name, path, accept in (("page", f"/posts/{slug}", HTML),
                               ("replies", f"/posts/{slug}/replies", "application/activity+json"),
                               ("context", f"/posts/{slug}/context",
                                "application/activity+json")):
        resp = await fc.get(path, accept=accept)
        assert resp.status == 200, (name, await resp.text())
        texts[name] = await resp.text()
    return texts


def opted_out(actor: FakeActor, *, summary: str = "", tags: list[str] = ()) -> None:  # type: ignore[assignment]
    """Give a fake actor a bio and profile hashtags, as Mastodon serves them."""
    actor.extra = {
        "summary": summary,
        "tag": [{"type": "Hashtag", "name": f"#{t}", "href": f"{actor.instance.url}/tags/{t}"}
                for t in tags],
    }


async def test_indexable_false_author_is_shown_with_nosnippet(blog: Blog,
                                                              remote: FakeInstance) -> None:
    """Given an author whose actor says indexable: false and another who does not say, when
    both reply, then both are shown; the thread JSON marks only the first nosnippet and the
    page wraps only its comment in a data-nosnippet element."""
    fc = blog.instance
    quiet, loud = remote.actor("quiet"), remote.actor("loud")
    quiet.extra = {"indexable": False}
    loud.extra = {"indexable": True}
    first = await remote_reply(fc, quiet, blog.post.ap_id, content="<p>Do not index me</p>")
    second = await remote_reply(fc, loud, blog.post.ap_id, content="<p>Index me</p>")
    data = await thread(fc, url=blog.post.permalink)
    marks = {c["id"]: c["nosnippet"] for c in flatten(data["comments"])}
    assert marks == {first: True, second: False}
    resp = await fc.get(f"/posts/{blog.post.slug}", accept=HTML)
    text = await resp.text()
    quiet_part = text.split(f'id="comment-{first}"', 1)[1].split("</li>", 1)[0]
    loud_part = text.split(f'id="comment-{second}"', 1)[1].split("</li>", 1)[0]
    assert '<div class="fc-nosnippet" data-nosnippet>' in quiet_part
    assert quiet_part.index("data-nosnippet") < quiet_part.index("Do not index me")
    assert "data-nosnippet" not in loud_part and "Index me" in loud_part


async def test_indexable_change_rerenders_the_stored_thread(blog: Blog,
                                                            remote: FakeInstance) -> None:
    """Given a reply rendered into the thread while its author was indexable, when the
    author's signed Update says indexable: false, then the next thread read marks it."""
    fc = blog.instance
    alice = remote.actor("alice")
    alice.extra = {"indexable": True}
    cid = await remote_reply(fc, alice, blog.post.ap_id)
    [before] = flatten((await thread(fc, url=blog.post.permalink))["comments"])
    assert (before["id"], before["nosnippet"]) == (cid, False)
    alice.extra = {"indexable": False}
    assert await outcome(await blog.send(alice, activity(alice, "Update", alice.document())))
    [after] = flatten((await thread(fc, url=blog.post.permalink))["comments"])
    assert (after["id"], after["nosnippet"]) == (cid, True)


async def test_refetched_profile_marks_rendered_comments(blog: Blog,
                                                        remote: FakeInstance) -> None:
    """Given a reply whose thread fragment is stored, when a refetch of its author (the
    actors' upsert) brings indexable: false, then the refetch succeeds and the thread
    marks the reply nosnippet."""
    fc = blog.instance
    alice = remote.actor("alice")
    cid = await remote_reply(fc, alice, blog.post.ap_id)
    await thread(fc, url=blog.post.permalink)
    await fc.server.app[THREAD_CACHE].fragments.flush()
    stored = await fc.rt.db.read.fetchone(
        "SELECT COUNT(*) FROM comment_fragments WHERE comment_id = ? AND body IS NOT NULL",
        (cid,))
    assert stored[0] == 1
    alice.extra = {"indexable": False}
    refreshed = await actors.get_actor(fc.rt, alice.id, refresh=True)
    assert refreshed.indexable is False
    [node] = flatten((await thread(fc, url=blog.post.permalink))["comments"])
    assert (node["id"], node["nosnippet"]) == (cid, True)


@pytest.mark.parametrize(("summary", "tags", "reason"), [
    ("<p>Writer. <a href='x' class='mention hashtag'>#<span>NoBot</span></a></p>", [], "#nobot"),
    ("<p>Writer.</p>", ["noblog"], "#noblog"),
])
async def test_opt_out_tag_keeps_replies_for_the_owner(blog: Blog, remote: FakeInstance,
                                                       summary: str, tags: list[str],
                                                       reason: str) -> None:
    """Given an author with #nobot in their bio (or #noblog among their profile tags), when
    they reply publicly, then the reply is stored but on no public surface; the admin
    listing shows it with the private ones, with the reason and the audience given."""
    fc = blog.instance
    alice = remote.actor("alice")
    opted_out(alice, summary=summary, tags=tags)
    cid = await remote_reply(fc, alice, blog.post.ap_id, content="<p>Not for blogs</p>")
    surfaces = await public_surfaces(fc, blog.post.slug, blog.post.permalink)
    for name, text in surfaces.items():
        assert "Not for blogs" not in text and alice.id not in text, name
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None
    assert (stored.visibility, stored.addressed) == (Visibility.DIRECT, Visibility.PUBLIC)
    assert stored.withheld == f"the author opted out with {reason} in their profile"
    listed = await moderation.list_comments(fc.rt, status="private")
    [row] = [moderation.comment_json(x) for x in listed]
    assert row["withheld"] == {"reason": stored.withheld, "audience": "public"}
    assert await moderation.list_comments(fc.rt, status="approved") == []


async def test_owner_answers_a_withheld_reply_privately(blog: Blog,
                                                        remote: FakeInstance) -> None:
    """Given a withheld #nobot reply, when the owner answers it, then the answer is a
    direct Note to its author only (as for a private reply) and is not shown publicly."""
    fc = blog.instance
    alice = remote.actor("alice")
    opted_out(alice, summary="<p>#nobot</p>")
    cid = await remote_reply(fc, alice, blog.post.ap_id)
    answer = await replies.owner_reply(fc.rt, cid, "Thanks, noted privately")
    assert answer.visibility is Visibility.DIRECT
    doc = await replies.note_document(fc.rt, fc.rt.db.read, answer)
    assert (doc["to"], doc["cc"]) == ([alice.id], [])
    surfaces = await public_surfaces(fc, blog.post.slug, blog.post.permalink)
    assert all("noted privately" not in text for text in surfaces.values())


async def test_not_discoverable_withholds_unlisted_replies_only(blog: Blog,
                                                                remote: FakeInstance) -> None:
    """Given an author with discoverable: false, when they reply once unlisted and once
    public, then the unlisted reply is kept for the owner and the public one is shown."""
    fc = blog.instance
    alice = remote.actor("alice")
    alice.extra = {"discoverable": False}
    hidden = await remote_reply(fc, alice, blog.post.ap_id, visibility="unlisted",
                                content="<p>quietly</p>")
    shown = await remote_reply(fc, alice, blog.post.ap_id, content="<p>loudly</p>")
    ids = [c["id"] for c in flatten((await thread(fc, url=blog.post.permalink))["comments"])]
    assert ids == [shown]
    stored = await comment_store.by_id(fc.rt.db.read, hidden)
    assert stored is not None and stored.withheld == (
        "the author is not discoverable and replied unlisted")
    assert stored.audience is Visibility.UNLISTED


async def test_profile_update_takes_effect_on_stored_replies(blog: Blog,
                                                             remote: FakeInstance) -> None:
    """Given two public replies shown on the page, when their author's signed
    Update{Person} adds #nobot, then both leave every public surface at once (no refetch
    needed); when a later Update removes it, both come back with their audience."""
    fc = blog.instance
    alice = remote.actor("alice")
    first = await remote_reply(fc, alice, blog.post.ap_id, content="<p>first words</p>")
    second = await remote_reply(fc, alice, blog.post.ap_id, visibility="unlisted",
                                content="<p>second words</p>")
    fetches = remote.count("/users/alice")
    opted_out(alice, summary="<p>Please: #NoBot</p>")
    update = activity(alice, "Update", alice.document(), to=[PUBLIC], cc=[])
    assert await outcome(await blog.send(alice, update)) == "actor fetched recently"
    assert remote.count("/users/alice") == fetches
    surfaces = await public_surfaces(fc, blog.post.slug, blog.post.permalink)
    for name, text in surfaces.items():
        assert "first words" not in text and "second words" not in text, name
    opted_out(alice, summary="<p>Changed my mind</p>")
    update = activity(alice, "Update", alice.document(), to=[PUBLIC], cc=[])
    await outcome(await blog.send(alice, update))
    shown = {c["id"]: c for c in flatten((await thread(fc, url=blog.post.permalink))["comments"])}
    assert set(shown) == {first, second}
    for cid, audience in ((first, Visibility.PUBLIC), (second, Visibility.UNLISTED)):
        stored = await comment_store.by_id(fc.rt.db.read, cid)
        assert stored is not None
        assert (stored.visibility, stored.withheld, stored.addressed) == (audience, None, None)


async def test_refetched_profile_decides_too(blog: Blog, remote: FakeInstance) -> None:
    """Given a shown reply, when its author's profile gains #nobot and we fetch the actor
    again, then the reply is withheld."""
    fc = blog.instance
    alice = remote.actor("alice")
    cid = await remote_reply(fc, alice, blog.post.ap_id)
    opted_out(alice, summary="<p>#nobot</p>")
    await actors.get_actor(fc.rt, alice.id, refresh=True)
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None and stored.withheld is not None
    assert (await thread(fc, url=blog.post.permalink))["comments"] == []


async def test_opt_out_tags_are_configurable(make_instance: Any, remote: FakeInstance) -> None:
    """Given [federation] opt_out_tags = ["#NoArchive"], when an author with #noarchive
    replies, then the reply is withheld, while #nobot no longer counts."""
    blog = await start_blog_with_post(make_instance,
                                      federation={"opt_out_tags": ["#NoArchive"]})
    assert blog.rt.settings.federation.opt_out_tags == ("noarchive",)
    archived, robot = remote.actor("archived"), remote.actor("robot")
    opted_out(archived, summary="<p>#noarchive please</p>")
    opted_out(robot, summary="<p>#nobot</p>")
    hidden = await remote_reply(blog.instance, archived, blog.post.ap_id)
    shown = await remote_reply(blog.instance, robot, blog.post.ap_id)
    ids = [c["id"] for c in flatten((await thread(blog.instance,
                                                  url=blog.post.permalink))["comments"])]
    assert ids == [shown] and hidden != shown


@pytest.mark.parametrize("value", [["no bot"], [""], ["#"], ["x" * 101]])
def test_opt_out_tags_are_validated(value: list[str]) -> None:
    """Given an opt-out tag that is not a hashtag, the config is refused naming the file,
    the key and the value; hashtags are kept without "#", case-folded, once each."""
    with pytest.raises(ConfigError, match=r"^c\.toml: \[federation\] opt_out_tags: .* is not "
                                          r"a hashtag"):
        settings_from_mapping({"federation": {"opt_out_tags": value}}, source="c.toml")
    ok = settings_from_mapping({"federation": {"opt_out_tags": ["#NoBot", "nobot", "Über_1"]}})
    assert ok.federation.opt_out_tags == ("nobot", "über_1")
    assert settings_from_mapping({}).federation.opt_out_tags == ("nobot", "noblog")


async def test_delivered_bodies_cannot_opt_out_someone_else(blog: Blog,
                                                            remote: FakeInstance) -> None:
    """Given bob's shown reply, when alice signs an Update whose embedded actor is bob with
    #nobot, then nothing changes for bob."""
    fc = blog.instance
    alice, bob = remote.actor("alice"), remote.actor("bob")
    cid = await remote_reply(fc, bob, blog.post.ap_id)
    await remote_reply(fc, alice, blog.post.ap_id)
    opted_out(bob, summary="<p>#nobot</p>")
    forged = activity(alice, "Update", bob.document())
    assert await outcome(await blog.send(alice, forged)) == "update of another actor"
    stored = await comment_store.by_id(fc.rt.db.read, cid)
    assert stored is not None and stored.withheld is None


async def test_withheld_reply_stays_withheld_when_edited(blog: Blog,
                                                         remote: FakeInstance) -> None:
    """Given a withheld #nobot reply, when its author edits it (Update{Note}), then it is
    edited but stays off every public surface."""
    fc = blog.instance
    alice = remote.actor("alice")
    opted_out(alice, summary="<p>#nobot</p>")
    obj = note(alice, blog.post.ap_id, content="<p>v1</p>")
    assert await outcome(await blog.send(alice, activity(alice, "Create", obj))) == "created"
    edited = {**obj, "content": "<p>v2</p>", "updated": "2099-01-01T00:00:00Z"}
    assert await outcome(await blog.send(alice, activity(alice, "Update", edited))) == "edited"
    stored = await comment_store.by_ap_id(fc.rt.db.read, obj["id"])
    assert stored is not None and stored.content == "<p>v2</p>"
    assert stored.visibility is Visibility.DIRECT and stored.withheld is not None
    resp = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(alice, "Create", obj))
    assert resp.status == 202
    assert "v2" not in str(await thread(fc, url=blog.post.permalink))
