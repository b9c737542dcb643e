"""Remote avatars, emoji and image thumbnails: fetched once by the server from the peers that
host them, checked and re-encoded, and served by us under names that never change; hostile
images refused with the initials shown; the cache kept fresh and within its size."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fedcomments.services import media as media_service
from fedcomments.services import moderation
from fedcomments.web.public_api import THREAD_CACHE
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, FakeInstance, activity, deliver, note
from tests.helpers.images import (
    SVG_WITH_SCRIPT,
    dimension_bomb,
    endless_gif,
    jpeg,
    noisy_png,
    png,
    size_of,
)
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import flatten, remote_reply, thread

HTML = "text/html"


def with_avatar(remote: FakeInstance, name: str, data: bytes | None = None,
                content_type: str = "image/png", display: str = "") -> FakeActor:
    """An actor of `remote` whose avatar is served by `remote` itself."""
    actor = remote.actor(name)
    url = remote.serve_file(f"/avatars/{name}.png", data or png(), content_type)
    actor.extra = {"icon": {"type": "Image", "mediaType": content_type, "url": url}}
    if display:
        actor.name = display
    return actor


def emoji_tag(remote: FakeInstance, code: str, data: bytes | None = None) -> dict[str, Any]:
    url = remote.serve_file(f"/emoji/{code}.png", data or png(32, 32, (250, 200, 0)),
                            "image/png")
    return {"id": f"{remote.url}/emojis/{code}", "type": "Emoji", "name": f":{code}:",
            "icon": {"type": "Image", "mediaType": "image/png", "url": url}}


def age_files(fc: Instance, seconds: float) -> None:
    """Make every cached file look last used `seconds` ago or more (older ones first, in
    name order), as the real clock the directory keeps would after a while."""
    now = time.time()
    for i, path in enumerate(sorted(fc.settings.media_path.rglob("*.webp"))):
        os.utime(path, (now - seconds - 1000 + i, now - seconds - 1000 + i))


async def settled(fc: Instance, **query: str) -> dict[str, Any]:
    """The thread once every image it asked for is made (or refused)."""
    await thread(fc, **query)
    await fc.rt.media_jobs.idle()
    return await thread(fc, **query)


def image_urls(data: Any) -> list[str]:
    """Every image URL in a thread's JSON (the fields a browser loads)."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("avatar", "avatar_2x", "url_2x") and isinstance(value, str):
                found.append(value)
            elif key in ("emojis",) and isinstance(value, list):
                found += [u for e in value for u in (e["url"], e["url_2x"]) if u]
            elif key == "thumbnail" and isinstance(value, dict):
                found += [value["url"], value["url_2x"]]
            else:
                found += image_urls(value)
    elif isinstance(data, list):
        for item in data:
            found += image_urls(item)
    return found


async def test_avatars_emoji_and_thumbnails_are_served_by_us(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a peer whose actor has an avatar and an emoji in its name, replying with an
    emoji and an image attachment, when the thread is read, then every image in the JSON
    and the page is a /media/ URL of ours (1× and 2×, at the sizes shown), each answers an
    image with a year of immutable caching, the emoji stand inline in the text, and the
    thumbnail links to the original."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       actor={"icon": f"{remote.url}/avatars/blog.png"})
    remote.serve_file("/avatars/blog.png", png(90, 90, (1, 2, 3)), "image/png")
    post = await add_post_via_api(fc)
    alice = with_avatar(remote, "alice", png(300, 200), display="Alice :cat:")
    alice.extra["tag"] = [emoji_tag(remote, "cat")]
    photo = remote.serve_file("/media/photo.jpg", jpeg(1200, 800), "image/jpeg")
    obj = note(alice, post["ap_id"], content="<p>Hello :blob: and :unknown:</p>", extra={
        "tag": [emoji_tag(remote, "blob")],
        "attachment": [{"type": "Document", "mediaType": "image/jpeg", "url": photo,
                        "name": "A photo"}]})
    resp = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(alice, "Create", obj))
    assert resp.status == 202
    from fedcomments.services import replies
    comment = (await fc.rt.db.read.fetchone("SELECT id FROM comments"))[0]
    await replies.owner_reply(fc.rt, comment, "Thanks :blob:")

    data = await settled(fc, id=str(post["id"]))
    c = data["comments"][0]
    author = c["author"]
    media = f"{fc.url}/media/"
    assert author["avatar"].startswith(media) and author["avatar"].endswith("-40.webp")
    assert author["avatar_2x"].startswith(media) and author["avatar_2x"].endswith("-80.webp")
    assert [e["shortcode"] for e in author["emojis"]] == ["cat"]
    assert [e["shortcode"] for e in c["emojis"]] == ["blob"]
    assert c["emojis"][0]["url"].endswith("-20.webp") and c["emojis"][0]["height"] == 20
    thumb = c["attachments"][0]["thumbnail"]
    assert c["attachments"][0]["url"] == photo
    assert (thumb["width"], thumb["height"]) == (160, 107)
    owner = c["replies"][0]["author"]
    assert owner["kind"] == "owner" and owner["avatar"].startswith(media)
    urls = image_urls(data)
    assert len(urls) == 10 and all(u.startswith(media) for u in urls), urls
    sizes = {}
    for url in urls:
        got = await fc.session.get(url)
        assert got.status == 200, url
        assert got.headers["Content-Type"] == "image/webp"
        assert got.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        kind, size = size_of(await got.read())
        assert kind == "WEBP"
        sizes[url.rsplit("-", 1)[1]] = size
    assert sizes["40.webp"] == (40, 40) and sizes["80.webp"] == (80, 80)  # square, centred
    assert sizes["320.webp"] == (320, 213)

    page = await (await fc.get(f"/posts/{post['slug']}", accept=HTML)).text()
    assert f'src="{author["avatar"]}" srcset="{author["avatar_2x"]} 2x"' in page
    assert (f'<p>Hello <img class="fc-emoji" src="{c["emojis"][0]["url"]}" srcset="'
            f'{c["emojis"][0]["url_2x"]} 2x" alt=":blob:" title=":blob:"') in page
    assert "and :unknown:</p>" in page
    assert f'<a href="{photo}" rel="nofollow noopener ugc"><img src="{thumb["url"]}"' in page
    assert 'alt=":cat:" title=":cat:"' in page
    # Nothing on the page makes a browser contact the peer.
    assert f'src="{remote.url}' not in page and f'srcset="{remote.url}' not in page


async def test_many_readers_cost_each_image_one_fetch(make_instance, remote: FakeInstance
                                                      ) -> None:  # type: ignore[no-untyped-def]
    """Given a reply whose avatar and emoji live on the peer, when fifty readers read the
    thread and the page at once and again, then the peer served each image once; when this
    machine's files are gone (evicted, or made on another machine) and twenty readers ask
    for one at once, it is fetched once more and served to all."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    bob = with_avatar(remote, "bob", png(120, 120))
    await remote_reply(fc, bob, post["ap_id"], content="<p>:wave:</p>",
                       extra={"tag": [emoji_tag(remote, "wave")]})
    for _ in range(3):
        await asyncio.gather(*(thread(fc, id=str(post["id"])) for _ in range(25)),
                             *(fc.get(f"/posts/{post['slug']}", accept=HTML) for _ in range(25)))
        await fc.rt.media_jobs.idle()
    assert remote.count("/avatars/bob.png") == 1
    assert remote.count("/emoji/wave.png") == 1
    avatar = (await thread(fc, id=str(post["id"])))["comments"][0]["author"]["avatar"]
    assert avatar.startswith(f"{fc.url}/media/")

    for path in fc.settings.media_path.rglob("*.webp"):
        path.unlink()
    answers = await asyncio.gather(*(fc.session.get(avatar) for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    assert remote.count("/avatars/bob.png") == 2
    assert size_of(await answers[0].read())[1] == (40, 40)


HOSTILE: dict[str, tuple[bytes, str]] = {
    "bomb": (dimension_bomb(), "image/png"),
    "svg": (SVG_WITH_SCRIPT, "image/svg+xml"),
    "svg-as-png": (SVG_WITH_SCRIPT, "image/png"),
    "liar": (png(50, 50), "image/jpeg"),
    "html": (b"<html><script>window.__xss=1</script></html>", "image/png"),
    "endless": (endless_gif(3000), "image/gif"),
    "huge-file": (noisy_png(1900, 1700), "image/png"),
}


async def test_hostile_images_are_refused_once_and_shown_as_initials(
        make_instance, remote: FakeInstance, caplog: pytest.LogCaptureFixture
        ) -> None:  # type: ignore[no-untyped-def]
    """Given peers' actors whose avatars are a 20,000 × 20,000 decompression bomb, an SVG
    with script (as SVG and as PNG), an image whose type lies, HTML, a GIF of 3000 frames
    and a file past the size cap, when their replies are read many times, then each avatar
    is refused and logged once, the thread shows initials (no image URL at all), the
    server answers throughout and its own memory does not grow by the images (they are
    decoded in a child process)."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    for name, (data, content_type) in HOSTILE.items():
        actor = with_avatar(remote, name.replace("-", ""), data, content_type)
        await remote_reply(fc, actor, post["ap_id"])
    good = with_avatar(remote, "good", png(60, 60))
    await remote_reply(fc, good, post["ap_id"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    caplog.set_level(logging.INFO, logger="fedcomments.media")
    for _ in range(3):
        data = await settled(fc, id=str(post["id"]))
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    authors = {c["author"]["handle"].split("@")[1]: c["author"] for c in data["comments"]}
    assert authors["good"]["avatar"].startswith(f"{fc.url}/media/")
    for name in HOSTILE:
        assert authors[name.replace("-", "")]["avatar"] is None, name
    rows = await fc.rt.db.read.fetchall("SELECT url, status, reason FROM media ORDER BY id")
    reasons = {urlsplit(r[0]).path.split("/")[-1].split(".")[0]: (r[1], r[2]) for r in rows}
    assert {k: v[0] for k, v in reasons.items()} == {
        **{name.replace("-", ""): "refused" for name in HOSTILE}, "good": "ready"}
    assert "too large" in reasons["bomb"][1] and "image/svg+xml" in reasons["svg"][1]
    assert reasons["liar"][1] == "declared image/jpeg but the data is PNG"
    assert "3000 frames" in reasons["endless"][1]
    assert "larger than" in reasons["hugefile"][1]
    refused = [r for r in caplog.records if r.getMessage() == "image refused"]
    assert sorted(r.url.rsplit("/", 1)[1] for r in refused) == sorted(  # type: ignore[attr-defined]
        f"{n.replace('-', '')}.png" for n in HOSTILE)
    assert grew_kib < 40_000, grew_kib
    page = await fc.get(f"/posts/{post['slug']}", accept=HTML)
    assert page.status == 200
    assert (await page.text()).count('class="fc-avatar fc-avatar-none"') == len(HOSTILE)


async def test_decoder_limits_hold_without_pillow_checks(tmp_path: Path) -> None:
    """Given a child decoder asked for an image that would need more than its memory, it
    answers a refusal (not a crash of the server); a garbled answer is a refusal too."""
    from fedcomments.media.decoder import ImageRefused

    with pytest.raises(ImageRefused, match="too large"):
        await media_service.decode(dimension_bomb(), "image/png", "avatar")
    with pytest.raises(ImageRefused, match="PNG"):
        await media_service.decode(png(), "image/gif", "emoji")
    made = await media_service.decode(jpeg(64, 48), "image/jpeg", "thumbnail")
    assert [(v.box, v.width, v.height) for v in made.variants] == [(160, 64, 48), (320, 64, 48)]


async def test_profile_update_replaces_the_avatar_and_housekeeping_removes_the_old(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a served avatar, when its actor sends Update{Person} with a new icon (a new
    URL, then new bytes at the same URL), then the thread shows the new avatar under a new
    name without a reader having to ask twice; a day later housekeeping removes the old
    image's row and files."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    carol = with_avatar(remote, "carol", png(50, 50, (200, 0, 0)))
    await remote_reply(fc, carol, post["ap_id"], publish=True)
    first = (await settled(fc, id=str(post["id"])))["comments"][0]["author"]["avatar"]
    assert first.startswith(f"{fc.url}/media/")

    async def update(icon_url: str) -> str:
        carol.extra["icon"]["url"] = icon_url
        fc.clock.advance(minutes=10)  # past the refetch interval of Update{Person}
        doc = activity(carol, "Update", carol.document())
        resp = await deliver(fc.session, carol, f"{fc.url}/inbox", doc)
        assert resp.status == 202
        await fc.rt.media_jobs.idle()
        shown = await thread(fc, id=str(post["id"]))
        return str(shown["comments"][0]["author"]["avatar"])

    second = await update(remote.serve_file("/avatars/carol-2.png", png(50, 50, (0, 0, 200)),
                                            "image/png"))
    assert second.startswith(f"{fc.url}/media/") and second != first
    remote.serve_file("/avatars/carol-2.png", png(50, 50, (0, 200, 0)), "image/png")
    third = await update(f"{remote.url}/avatars/carol-2.png")
    assert third.startswith(f"{fc.url}/media/") and third not in (first, second)
    assert size_of(await (await fc.session.get(third)).read())[1] == (40, 40)

    fc.clock.advance(days=2)
    age_files(fc, 3600)
    swept = await media_service.housekeeping(fc.rt)
    assert swept.rows == 1  # the first URL: nobody shows it any more
    names = {p.name.split("-")[0] for p in fc.settings.media_path.rglob("*.webp")}
    digest = lambda url: url.rsplit("/", 1)[1].split("-")[0]  # noqa: E731
    assert names == {digest(third)}  # the same-URL old file went as well
    assert (await fc.session.get(first)).status == 404


async def test_unreferenced_images_go_and_the_cache_keeps_its_size(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given thumbnails beyond [media] cache_max_mb, housekeeping evicts the least recently
    shown files first (they come back on request), and once a comment is deleted its
    images go with it."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       media={"cache_max_mb": 1})
    post = await add_post_via_api(fc)
    dave = with_avatar(remote, "dave")
    ids = []
    for i in range(20):
        url = remote.serve_file(f"/media/{i}.png", noisy_png(640, 640, seed=i), "image/png")
        ids.append(await remote_reply(fc, dave, post["ap_id"], publish=True, extra={"attachment": [
            {"type": "Image", "mediaType": "image/png", "url": url}]}))
    data = await settled(fc, id=str(post["id"]))
    thumbs = [c["attachments"][0]["thumbnail"]["url_2x"] for c in data["comments"]]
    assert len(thumbs) == 20
    total = sum(p.stat().st_size for p in fc.settings.media_path.rglob("*.webp"))
    assert total > 1 << 20, total
    # Every file was last shown an hour ago or more; the newest thumbnail now.
    age_files(fc, 3600)
    newest = thumbs[-1].rsplit("/", 1)[1]
    assert (await fc.session.get(thumbs[-1])).status == 200  # marks it used
    swept = await media_service.housekeeping(fc.rt)
    assert swept.evicted > 0 and swept.kept_bytes <= 1 << 20
    left = {p.name for p in fc.settings.media_path.rglob("*.webp")}
    assert newest in left
    evicted = next(u for u in thumbs if u.rsplit("/", 1)[1] not in left)
    assert (await fc.session.get(evicted)).status == 200  # made again from its source

    await moderation.delete_comments(fc.rt, ids[:10])
    fc.clock.advance(days=2)
    age_files(fc, 3600)
    swept = await media_service.housekeeping(fc.rt)
    assert swept.rows == 10
    assert tuple(await fc.rt.db.read.fetchone(
        "SELECT COUNT(*) FROM media WHERE kind = 'thumbnail'")) == (10,)


async def test_hot_linking_when_proxy_is_off(make_instance, remote: FakeInstance
                                             ) -> None:  # type: ignore[no-untyped-def]
    """Given [media] proxy = false, the thread shows the peer's own image URLs, the page
    policy allows https images, no thumbnail is made and the server fetches nothing."""
    fc: Instance = await make_instance(moderation={"policy": "none"}, media={"proxy": False})
    post = await add_post_via_api(fc)
    erin = with_avatar(remote, "erin")
    await remote_reply(fc, erin, post["ap_id"], content="<p>:hi:</p>",
                       extra={"tag": [emoji_tag(remote, "hi")]})
    data = await settled(fc, id=str(post["id"]))
    c = data["comments"][0]
    assert c["author"]["avatar"] == f"{remote.url}/avatars/erin.png"
    assert c["emojis"][0]["url"] == f"{remote.url}/emoji/hi.png"
    assert remote.count("/avatars/erin.png") == 0 and remote.count("/emoji/hi.png") == 0
    page = await fc.get(f"/posts/{post['slug']}", accept=HTML)
    assert "img-src 'self' https: http: data:" in page.headers["Content-Security-Policy"]


async def test_thread_fragments_follow_images_becoming_available(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a thread rendered while an avatar was still being fetched (initials), when
    the image is made, then the fragments showing it were cleared and the thread's ETag
    moved, so the next read shows it; the assembled thread always equals a rendering from
    scratch."""
    from fedcomments.services.thread import scratch_json

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    gate = remote.gate("/avatars/fay.png")
    fay = with_avatar(remote, "fay")
    reply = await remote_reply(fc, fay, post["ap_id"])
    url = f"{fc.url}/api/v1/thread?id={post['id']}"
    first = await fc.session.get(url)
    assert (await first.json())["comments"][0]["author"]["avatar"] is None
    await gate.arrived.wait()
    await fc.server.app[THREAD_CACHE].fragments.flush()
    fragment = "SELECT body FROM comment_fragments WHERE comment_id = ?"
    assert b'"avatar":null' in (await fc.rt.db.read.fetchone(fragment, (reply,)))[0]
    gate.release.set()
    await fc.rt.media_jobs.idle()
    assert tuple(await fc.rt.db.read.fetchone(fragment, (reply,))) == (None,)
    second = await fc.session.get(url)
    assert second.headers["ETag"] != first.headers["ETag"]
    data = await second.json()
    assert data["comments"][0]["author"]["avatar"].startswith(f"{fc.url}/media/")
    assert data == await scratch_json(fc.rt, post["id"])
    assert [c["id"] for c in flatten(data["comments"])] == [reply]


def test_emoji_replace_text_only() -> None:
    """Given sanitised HTML with :shortcodes: in text, in a link's href and in its text,
    only text becomes images; unknown codes and markup stay as they were, escaped."""
    from fedcomments.web.emoji import emojify_html, emojify_text

    blob = [{"shortcode": "blob", "url": "https://c.example/media/x-20.webp",
             "url_2x": "https://c.example/media/x-40.webp", "width": 20, "height": 20}]
    html = ('<p>a :blob: &amp; <a href="https://s.example/:blob:" rel="nofollow">:blob:</a>'
            ' :nope:<br>&lt;b&gt;</p>')
    img = ('<img class="fc-emoji" src="https://c.example/media/x-20.webp" srcset="'
           'https://c.example/media/x-40.webp 2x" alt=":blob:" title=":blob:" width="20" '
           'height="20" draggable="false" referrerpolicy="no-referrer">')
    assert str(emojify_html(html, blob)) == (
        f'<p>a {img} &amp; <a href="https://s.example/:blob:" rel="nofollow">{img}</a>'
        ' :nope:<br>&lt;b&gt;</p>')
    assert str(emojify_html(html, [])) == html
    assert str(emojify_text('<b>Ann</b> :blob:', blob)) == f"&lt;b&gt;Ann&lt;/b&gt; {img}"


async def test_an_image_made_meanwhile_is_not_claimed_again(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given two processes that both saw an image still to fetch, when one has fetched and
    made it before the other gets to claim it, then the other's claim fails (one fetch per
    image across `[server] workers`); a claim on the row as it now stands still succeeds."""
    from fedcomments.store import media as media_store

    fc: Instance = await make_instance(moderation={"policy": "none"})
    url = remote.serve_file("/avatars/gil.png", png(60, 60), "image/png")
    async with fc.rt.db.transaction() as tx:
        await media_store.ensure(tx, [(url, "avatar")], fc.rt.now())
    seen_by_other = await media_store.get(fc.rt.db.read, url, "avatar")
    assert seen_by_other is not None and seen_by_other.status == "pending"

    made = await media_service.fetch(fc.rt, url, "avatar")
    assert made is not None and made.ready and remote.count("/avatars/gil.png") == 1
    now = fc.rt.now()
    async with fc.rt.db.transaction() as tx:
        assert not await media_store.claim(tx, seen_by_other, now, now + media_service.LEASE)
    async with fc.rt.db.transaction() as tx:
        assert await media_store.claim(tx, made, now, now + media_service.LEASE)


async def test_an_image_whose_fetch_failed_is_fetched_again_later(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given an avatar whose server failed our first fetch and another whose fetch was cut
    off (its process died holding the lease), while the thread that showed their initials
    stays cached, when their retry time has passed and housekeeping runs, then both are
    fetched again and the thread shows them."""
    from fedcomments.store import media as media_store

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    hal, ida = with_avatar(remote, "hal", png(60, 60)), with_avatar(remote, "ida", png(60, 60))
    remote.gone.add("/avatars/hal.png")
    gate = remote.gate("/avatars/ida.png")
    await remote_reply(fc, hal, post["ap_id"], publish=True)
    await settled(fc, id=str(post["id"]))
    await remote_reply(fc, ida, post["ap_id"], publish=True)
    await thread(fc, id=str(post["id"]))
    await gate.arrived.wait()
    # ida's fetch never ends (its process is gone): the lease it holds runs out.
    await fc.rt.media_jobs.close()
    gate.release.set()
    data = await settled(fc, id=str(post["id"]))
    assert [c["author"]["avatar"] for c in data["comments"]] == [None, None]
    rows = {r.url.rsplit("/", 1)[1]: r for r in [
        await media_store.get(fc.rt.db.read, f"{remote.url}/avatars/{n}.png", "avatar")
        for n in ("hal", "ida")] if r is not None}
    assert (rows["hal.png"].status, rows["ida.png"].status) == ("failed", "pending")

    remote.gone.discard("/avatars/hal.png")
    for _ in range(3):  # readers alone never ask again: the thread is cached
        await settled(fc, id=str(post["id"]))
    assert remote.count("/avatars/hal.png") == 1 and remote.count("/avatars/ida.png") == 1
    fc.clock.advance(hours=2)
    await media_service.housekeeping(fc.rt)
    await fc.rt.media_jobs.idle()
    data = await thread(fc, id=str(post["id"]))
    assert [(c["author"]["avatar"] or "")[:len(fc.url) + 7] for c in data["comments"]] == [
        f"{fc.url}/media/"] * 2
    assert remote.count("/avatars/hal.png") == 2 and remote.count("/avatars/ida.png") == 2


async def test_a_cache_that_cannot_be_written_costs_no_error_and_no_fetch_per_reader(
        make_instance, remote: FakeInstance, caplog: pytest.LogCaptureFixture
        ) -> None:  # type: ignore[no-untyped-def]
    """Given a served avatar, when the cache directory can no longer be written (a full
    disk, or no directory at all) and this machine's files are gone, then readers asking
    for the file get a 404 that is never cached, not a 500, and its server is asked once,
    not once per reader; a new image that cannot be stored is tried again later (it is
    not the image's fault), and the reason is logged."""
    import shutil

    from fedcomments.store import media as media_store

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    await remote_reply(fc, with_avatar(remote, "jo", png(60, 60)), post["ap_id"])
    avatar = (await settled(fc, id=str(post["id"])))["comments"][0]["author"]["avatar"]
    assert avatar.startswith(f"{fc.url}/media/")
    shutil.rmtree(fc.settings.media_path)
    fc.settings.media_path.write_bytes(b"not a directory")

    caplog.set_level(logging.INFO, logger="fedcomments.media")
    answers = [await fc.session.get(avatar) for _ in range(5)]
    assert [(a.status, a.headers.get("Cache-Control")) for a in answers] == [
        (404, "no-store")] * 5
    assert remote.count("/avatars/jo.png") == 2

    await remote_reply(fc, with_avatar(remote, "kim", png(60, 60)), post["ap_id"])
    await settled(fc, id=str(post["id"]))
    row = await media_store.get(fc.rt.db.read, f"{remote.url}/avatars/kim.png", "avatar")
    assert row is not None and row.status == "failed" and row.next_try_at is not None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "image not stored"] * 2


async def test_media_answers_keep_their_etag_and_never_cache_an_error(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a served avatar, its ETag is its name whatever the age of the file on this
    machine (a copy made on another machine, or touched when served, answers the same), a
    matching If-None-Match gets 304, and no answer but the image itself carries the
    year-long caching (a Range past its end included)."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    await remote_reply(fc, with_avatar(remote, "lea", png(60, 60)), post["ap_id"])
    avatar = (await settled(fc, id=str(post["id"])))["comments"][0]["author"]["avatar"]
    name = avatar.rsplit("/", 1)[1]
    first = await fc.session.get(avatar)
    assert (first.status, first.headers["ETag"]) == (200, f'"{name.removesuffix(".webp")}"')
    body = await first.read()

    age_files(fc, 86_400)
    again = await fc.session.get(avatar, headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status, again.headers["ETag"]) == (304, first.headers["ETag"])
    assert again.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    fresh = await fc.session.get(avatar)
    assert (fresh.status, await fresh.read(), fresh.headers["ETag"]) == (
        200, body, first.headers["ETag"])

    odd = await fc.session.get(avatar, headers={"Range": f"bytes={len(body) + 10}-"})
    assert odd.status == 200 or "immutable" not in odd.headers.get("Cache-Control", ""), (
        odd.status, dict(odd.headers))


async def test_names_of_no_image_fetch_nothing(make_instance, remote: FakeInstance
                                               ) -> None:  # type: ignore[no-untyped-def]
    """Given a served avatar, when readers ask for its name at sizes avatars are never cut
    to, or for names no image has, then each gets a 404 that is never cached, and nothing
    is fetched from the avatar's server however often they ask."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    await remote_reply(fc, with_avatar(remote, "max", png(60, 60)), post["ap_id"])
    avatar = (await settled(fc, id=str(post["id"])))["comments"][0]["author"]["avatar"]
    assert remote.count("/avatars/max.png") == 1
    digest = avatar.rsplit("/", 1)[1].split("-")[0]
    for name in (f"{digest}-160.webp", f"{digest}-999.webp", f"{digest}-0.webp",
                 f"{'0' * 32}-40.webp", f"{digest}-40.png", "..%2Fetc%2Fpasswd"):
        for _ in range(2):
            resp = await fc.session.get(f"{fc.url}/media/{name}")
            assert (resp.status, resp.headers.get("Cache-Control")) == (404, "no-store"), name
    assert remote.count("/avatars/max.png") == 1


async def test_a_domain_block_drops_the_images_it_served(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a commenter whose avatar and one emoji are served from another domain (a
    CDN; the avatar's URL spells its host in other letters), when that domain is blocked,
    then the thread stops showing them at once, their files answer 404, and nothing more
    is fetched from it, even by housekeeping; the emoji served from the commenter's own
    server stays."""
    from fedcomments.services import blocks
    from tests.helpers.fediverse import running

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    async with running(1, host="localhost") as [cdn]:
        nia = remote.actor("nia")
        # Her server spells the CDN's host in full-width letters: still the same host.
        icon = cdn.serve_file("/nia.png", png(60, 60), "image/png").replace(
            "localhost", "ｌｏｃａｌｈｏｓｔ")
        nia.extra = {"icon": {"type": "Image", "mediaType": "image/png", "url": icon}}
        await remote_reply(fc, nia, post["ap_id"], publish=True, content="<p>:far: :near:</p>",
                           extra={"tag": [emoji_tag(cdn, "far", png(30, 30, (9, 9, 9))),
                                           emoji_tag(remote, "near")]})
        before = (await settled(fc, id=str(post["id"])))["comments"][0]
        shown = [before["author"]["avatar"], *(e["url"] for e in before["emojis"])]
        assert len(shown) == 3 and all(u.startswith(f"{fc.url}/media/") for u in shown)
        fetched = list(cdn.hits)

        await blocks.block_domain(fc.rt, "localhost")
        after = (await thread(fc, id=str(post["id"])))["comments"][0]
        assert after["author"]["avatar"] is None
        assert [e["shortcode"] for e in after["emojis"]] == ["near"]
        assert [(await fc.session.get(u)).status for u in shown] == [404, 404, 200]
        fc.clock.advance(days=2)
        await media_service.housekeeping(fc.rt)
        await settled(fc, id=str(post["id"]))
        assert cdn.hits == fetched


async def test_attachments_of_types_never_decoded_are_not_fetched(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a reply with an AVIF and a HEIC photo attached (image types the decoder never
    reads) beside a JPEG, when the thread is read, then only the JPEG is fetched and shown
    as a thumbnail; the others stay links with their names, fetched by no one."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    files = [(remote.serve_file(f"/media/p.{ext}", data, kind), kind) for ext, data, kind in (
        ("avif", b"\x00\x00\x00\x1cftypavif", "image/avif"),
        ("heic", b"\x00\x00\x00\x18ftypheic", "image/heic"),
        ("jpg", jpeg(320, 240), "image/jpeg"))]
    await remote_reply(fc, remote.actor("olu"), post["ap_id"], extra={"attachment": [
        {"type": "Document", "mediaType": kind, "url": url, "name": f"photo {i}"}
        for i, (url, kind) in enumerate(files)]})
    shown = (await settled(fc, id=str(post["id"])))["comments"][0]["attachments"]
    assert [(a["name"], a["thumbnail"] is not None) for a in shown] == [
        ("photo 0", False), ("photo 1", False), ("photo 2", True)]
    assert [remote.count(f"/media/p.{ext}") for ext in ("avif", "heic", "jpg")] == [0, 0, 1]


async def test_images_of_an_unblocked_domain_are_fetched_again(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given commenters whose avatars live on a CDN domain, one shown before the domain
    was blocked and one who arrived while it was, when the domain is unblocked and
    housekeeping runs, then both avatars are fetched and shown (a block refuses a domain
    while it lasts, not for ever)."""
    from fedcomments.services import blocks
    from tests.helpers.fediverse import running

    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    async with running(1, host="localhost") as [cdn]:
        people = []
        for name in ("pia", "quin"):
            actor = remote.actor(name)
            actor.extra = {"icon": {"type": "Image", "url": cdn.serve_file(
                f"/{name}.png", png(60, 60, (len(name), 9, 9)), "image/png")}}
            people.append(actor)
        await remote_reply(fc, people[0], post["ap_id"])
        await settled(fc, id=str(post["id"]))
        await blocks.block_domain(fc.rt, "localhost")
        await remote_reply(fc, people[1], post["ap_id"])
        shown = await settled(fc, id=str(post["id"]))
        assert [c["author"]["avatar"] for c in shown["comments"]] == [None, None]

        await blocks.unblock_domain(fc.rt, "localhost")
        await media_service.housekeeping(fc.rt)
        await fc.rt.media_jobs.idle()
        shown = await thread(fc, id=str(post["id"]))
        assert [(c["author"]["avatar"] or "")[:len(fc.url) + 7] for c in shown["comments"]] == [
            f"{fc.url}/media/"] * 2
        assert (cdn.count("/pia.png"), cdn.count("/quin.png")) == (2, 1)


def _decoder_children() -> list[int]:
    """Decoder processes started by this process."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if b"fedcomments.media.decoder" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
    return found


async def test_a_decoder_stopped_from_outside_does_not_refuse_the_image(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given an avatar being decoded, when its decoder is stopped from outside (a service
    manager stopping the whole group of processes with SIGTERM, while the server itself
    stops), then the image is not refused for good: its fetch counts as failed and is
    tried again later; and the decoder runs in a session of its own, so a terminal's
    Ctrl-C reaches only the server, which stops it."""
    from fedcomments.store import media as media_store
    from tests.helpers.peers import until

    fc: Instance = await make_instance(moderation={"policy": "none"})
    url = remote.serve_file("/avatars/big.png", png(4096, 4096, (1, 2, 3, 4), "RGBA"),
                            "image/png")
    task = asyncio.ensure_future(media_service.fetch(fc.rt, url, "avatar"))
    await until(lambda: bool(_decoder_children()), 20)
    [child] = _decoder_children()
    assert os.getpgid(child) != os.getpgid(0)
    os.kill(child, signal.SIGTERM)
    row = await task
    assert row is not None and row.status == "failed" and row.next_try_at is not None
    assert (await media_store.get(fc.rt.db.read, url, "avatar")) == row
