"""Posts from the blog's own feed: a static blog on loopback publishes RSS, Atom and JSON
Feed; new entries become posts that reach a real follower as Create, edited ones as
Update, the first poll of an old feed announces nothing, hand-added posts are never
duplicated, and a feed that fails backs off with one log line per streak."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedcomments.config import settings_from_mapping
from fedcomments.errors import ConfigError, FeedError
from fedcomments.feeds.read import parse_feed
from fedcomments.services import feed_sync
from fedcomments.services import posts as post_service
from fedcomments.store import feeds as feed_store
from tests.conftest import Instance
from tests.helpers.admin import run_cli
from tests.helpers.blogkit import followed, start_blog_without_worker, worker
from tests.helpers.peers import peers, until_true
from tests.helpers.posts import add_post_via_service
from tests.helpers.staticblog import BlogPost, StaticBlog

HOUR = 3600


@pytest.fixture
async def static_blog() -> AsyncIterator[StaticBlog]:
    blog = await StaticBlog().start()
    yield blog
    await blog.close()


def old_posts(fc_clock: Any) -> list[BlogPost]:
    """Two posts written long before the feed was added."""
    return [BlogPost("first", "First post", fc_clock() - timedelta(days=20), "One",
                     ("Machine learning", "go")),
            BlogPost("second", "Second post", fc_clock() - timedelta(days=10), "Two",
                     image="https://img.example/2.png")]


async def start_with_feed(make_instance: Any, feeds: list[Any], **sections: Any) -> Instance:
    """Our server polling `feeds` hourly, its delivery driven by the test."""
    return await start_blog_without_worker(
        make_instance, blog={"feeds": feeds, "poll_interval": HOUR}, **sections)


async def state_of(fc: Instance, url: str) -> feed_store.FeedState | None:
    return await feed_store.feed_state(fc.rt.db.read, url)


async def until_state(fc: Instance, url: str, check: Any) -> feed_store.FeedState:
    async def ok() -> bool:
        state = await state_of(fc, url)
        return state is not None and bool(check(state))
    await until_true(ok)
    state = await state_of(fc, url)
    assert state is not None
    return state


async def posts_by_url(fc: Instance) -> dict[str, Any]:
    return {p.permalink: p for p in await post_service.list_posts(fc.rt, include_deleted=True)}


async def test_atom_feed_polled_in_background_reaches_a_real_follower(
        make_instance: Any, static_blog: StaticBlog, clock: Any) -> None:
    """Given a blog whose Atom feed lists two old posts, and a follower on a real server,
    when the server polls the feed in the background, then the old posts become posts
    without a word to followers; a post written after the feed was added reaches the
    follower as a Create signed so that it verifies, and editing its title sends an
    Update."""
    feed = static_blog.url + "/atom.xml"
    static_blog.posts = old_posts(clock)
    static_blog.down = 503  # down while the follower arrives: the first poll fails
    fc = await start_with_feed(make_instance, [feed])
    await until_state(fc, feed, lambda s: s.failures == 1)
    async with peers("127.0.0.2") as [peer]:
        await followed(fc, (peer, peer.actor("alice")))
        static_blog.down = None
        static_blog.posts.append(BlogPost("third", "Third post", clock() + timedelta(minutes=5),
                                          "Three", ("news",)))
        clock.advance(hours=1)  # the backoff after one failure: one poll interval
        await until_state(fc, feed, lambda s: s.polled_at is not None)
        found = await posts_by_url(fc)
        assert sorted(found) == [static_blog.permalink(s) for s in ("first", "second", "third")]
        assert found[static_blog.permalink("first")].tags == ("MachineLearning", "go")
        assert found[static_blog.permalink("second")].image == "https://img.example/2.png"
        assert found[static_blog.permalink("third")].summary == "Three"
        await worker(fc).run_until_idle()
        [create] = peer.arrivals
        assert (create.type, create.verified, create.answered) == ("Create", True, 202)
        article = create.json()["object"]
        assert (article["name"], article["url"]) == ("Third post",
                                                     static_blog.permalink("third"))

        static_blog.posts[2].title = "Third post, edited"
        clock.advance(hours=1)
        await until_state(fc, feed, lambda s: s.polled_at == clock())
        await worker(fc).run_until_idle()
        assert [a.type for a in peer.arrivals] == ["Create", "Update"]
        update = peer.arrivals[1]
        assert update.verified and update.json()["object"]["name"] == "Third post, edited"
        assert update.json()["object"]["id"] == article["id"]


async def test_rss_first_poll_is_quiet_and_later_entries_are_announced(
        make_instance: Any, static_blog: StaticBlog, clock: Any) -> None:
    """Given an RSS feed with old posts and a follower, when it is synced, then the old
    entries are added quietly (nothing is queued); a new entry is added and announced,
    an entry that leaves the feed is left alone, and a 304 changes nothing."""
    feed = static_blog.url + "/index.xml"
    static_blog.posts = old_posts(clock)
    static_blog.down = 503
    fc = await start_with_feed(make_instance, [feed])
    await until_state(fc, feed, lambda s: s.failures == 1)
    async with peers("127.0.0.2") as [peer]:
        await followed(fc, (peer, peer.actor("alice")))
        static_blog.down = None
        [first] = await feed_sync.sync_feeds(fc.rt)
        assert (first.status, first.first_poll, first.format) == ("ok", True, "rss20")
        assert [(e.title, e.announced) for e in first.of("added")] == [
            ("Second post", False), ("First post", False)]
        await worker(fc).run_until_idle()
        assert peer.arrivals == []

        clock.advance(minutes=10)
        static_blog.posts = [BlogPost("third", "Third post", clock(), "Three")]
        [second] = await feed_sync.sync_feeds(fc.rt)
        assert [(e.title, e.announced) for e in second.of("added")] == [("Third post", True)]
        await worker(fc).run_until_idle()
        assert [a.type for a in peer.arrivals] == ["Create"] and peer.arrivals[0].verified
        assert len(await posts_by_url(fc)) == 3  # the entries that left the feed stay
        assert all(p.deleted_at is None for p in (await posts_by_url(fc)).values())

        [third] = await feed_sync.sync_feeds(fc.rt)
        assert third.status == "not-modified"
        assert static_blog.requests[-1].if_none_match is not None
        assert static_blog.requests[-1].answered == 304


async def test_hand_added_post_and_second_feed_are_not_duplicated(
        make_instance: Any, static_blog: StaticBlog, clock: Any) -> None:
    """Given a post registered by hand under another spelling of its permalink (no
    trailing slash) and a blog publishing RSS and Atom, when both feeds are synced,
    then no post is duplicated; the owner's text stays until the entry changes, and a
    change then updates the one post."""
    static_blog.posts = old_posts(clock)
    static_blog.down = 503
    feeds = [static_blog.url + "/index.xml", static_blog.url + "/atom.xml"]
    fc = await start_with_feed(make_instance, feeds)
    await until_state(fc, feeds[1], lambda s: s.failures == 1)  # the startup poll
    static_blog.down = None
    by_hand = await add_post_via_service(fc.rt, static_blog.permalink("first").rstrip("/"),
                                         "My own title")
    outcomes = await feed_sync.sync_feeds(fc.rt)
    assert [len(o.of("added")) for o in outcomes] == [1, 0]
    assert {e.reason for o in outcomes for e in o.of("skipped")} == {"already registered"}
    found = await posts_by_url(fc)
    assert len(found) == 2
    assert found[by_hand.permalink].title == "My own title"

    static_blog.posts[0].summary = "One, rewritten"
    outcomes = await feed_sync.sync_feeds(fc.rt)
    assert [[e.post_id for e in o.of("updated")] for o in outcomes] == [[by_hand.id]] * 2
    found = await posts_by_url(fc)
    assert len(found) == 2
    assert found[by_hand.permalink].title == "First post"
    assert found[by_hand.permalink].summary == "One, rewritten"


async def test_deleted_post_is_not_brought_back(make_instance: Any, static_blog: StaticBlog,
                                                clock: Any) -> None:
    """Given a post imported from the feed and then deleted by the owner, when the feed
    still lists it (even changed), then it stays deleted."""
    feed = static_blog.url + "/feed.json"
    static_blog.posts = old_posts(clock)
    fc = await start_with_feed(make_instance, [feed])
    await until_state(fc, feed, lambda s: s.polled_at is not None)
    first = (await posts_by_url(fc))[static_blog.permalink("first")]
    await post_service.delete_post(fc.rt, str(first.id))
    static_blog.posts[0].title = "First post, again"
    [outcome] = await feed_sync.sync_feeds(fc.rt)
    assert [(e.title, e.reason) for e in outcome.of("skipped")] == [
        ("Second post", "unchanged"), ("First post, again", "the post was deleted")]
    assert (await posts_by_url(fc))[static_blog.permalink("first")].deleted_at is not None


async def test_failing_feed_backs_off_and_logs_once_per_streak(
        make_instance: Any, static_blog: StaticBlog, clock: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    """Given a feed that answers 503, when the background poller meets it three times,
    then it waits one, two, then four poll intervals, logs one warning for the streak and
    one line when the feed is readable again."""
    caplog.set_level(logging.INFO, logger="fedcomments.feeds")
    feed = static_blog.url + "/index.xml"
    static_blog.down = 503
    fc = await start_with_feed(make_instance, [feed])
    state = await until_state(fc, feed, lambda s: s.failures == 1)
    assert state.next_poll_at == clock() + timedelta(hours=1)
    clock.advance(hours=1)
    state = await until_state(fc, feed, lambda s: s.failures == 2)
    assert state.next_poll_at == clock() + timedelta(hours=2)
    clock.advance(hours=2)
    state = await until_state(fc, feed, lambda s: s.failures == 3)
    assert state.next_poll_at == clock() + timedelta(hours=4)
    assert "503" in (state.last_error or "")
    static_blog.down = None
    static_blog.posts = old_posts(clock)
    clock.advance(hours=4)
    state = await until_state(fc, feed, lambda s: s.failures == 0)
    assert state.polled_at == clock() and state.next_poll_at == clock() + timedelta(hours=1)
    lines = [r for r in caplog.records if r.name == "fedcomments.feeds"]
    assert [r.levelno for r in lines if "cannot be read" in r.getMessage()] == [logging.WARNING]
    assert [r.getMessage() for r in lines if "readable again" in r.getMessage()] == [
        f"feed {feed} is readable again after 3 failed polls"]


async def test_feed_on_private_address_needs_the_owner_to_say_so(
        make_instance: Any, static_blog: StaticBlog, clock: Any) -> None:
    """Given a feed on loopback and a server that refuses private addresses, when it is
    synced, then it is refused before any request; marked `allow_private` it is read."""
    feed = static_blog.url + "/index.xml"
    static_blog.posts = old_posts(clock)
    closed = await start_with_feed(make_instance, [feed],
                                   federation={"allow_private_addresses": False})
    [refused] = await feed_sync.sync_feeds(closed.rt)
    assert refused.status == "failed" and "refused" in (refused.error or "")
    assert static_blog.requests == []
    assert await post_service.list_posts(closed.rt) == []

    opened = await start_with_feed(make_instance, [{"url": feed, "allow_private": True}],
                                   federation={"allow_private_addresses": False})
    await until_state(opened, feed, lambda s: s.polled_at is not None)
    assert len(await post_service.list_posts(opened.rt)) == 2


HOSTILE_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>
<item><guid>g1</guid><title>Kept</title><link>/kept/</link></item>
<item><guid>g1</guid><title>Same guid again</title><link>/other/</link></item>
<item><guid>g2</guid><title>&lt;script&gt;alert(1)&lt;/script&gt;Scripted</title>
 <link>javascript:alert(1)</link></item>
<item><guid>g3</guid><title>&lt;img src=x onerror=alert(1)&gt;Marked up</title>
 <link>/marked/</link><description>&lt;script&gt;alert(2)&lt;/script&gt;Fine.</description></item>
</channel></rss>"""


async def test_duplicate_and_hostile_entries_are_skipped_and_reported(
        make_instance: Any, static_blog: StaticBlog) -> None:
    """Given a feed listing one guid twice, an entry linking to javascript: and one
    whose title and summary carry markup, when it is synced, then the first of the
    twins is added and the second reported as skipped (not silently dropped), the
    javascript: entry is skipped, and the markup is gone from the stored post."""
    static_blog.raw = HOSTILE_RSS
    fc = await start_with_feed(make_instance, [static_blog.url + "/index.xml"])
    [outcome] = await feed_sync.sync_feeds(fc.rt, dry_run=True)
    assert sorted(e.title for e in outcome.of("added")) == ["Kept", "Marked up"]
    skipped = {e.title: e.reason for e in outcome.of("skipped")}
    assert skipped == {"Same guid again": "the same id as an earlier entry of the feed",
                       "Scripted": "no http(s) link to the post"}
    [outcome] = await feed_sync.sync_feeds(fc.rt)
    assert len(outcome.entries) == 4
    marked = (await posts_by_url(fc))[static_blog.permalink("marked")]
    assert (marked.title, marked.summary) == ("Marked up", "Fine.")


async def test_oversized_and_non_feed_documents_fail_and_store_nothing(
        make_instance: Any, static_blog: StaticBlog) -> None:
    """Given a feed URL that serves more than the size cap, then an HTML page, when it is
    synced, then each poll fails with the reason and nothing is stored."""
    feed = static_blog.url + "/index.xml"
    static_blog.raw = b"<rss>" + b" " * feed_sync.MAX_FEED_BYTES + b"</rss>"
    fc = await start_with_feed(make_instance, [feed])
    await until_state(fc, feed, lambda s: s.failures == 1)
    [big] = await feed_sync.sync_feeds(fc.rt)
    assert big.status == "failed" and "larger than" in (big.error or "")
    static_blog.raw = b"<!DOCTYPE html><html><body><p>Hello</p></body></html>"
    [page] = await feed_sync.sync_feeds(fc.rt)
    assert page.status == "failed" and "not an RSS or Atom feed" in (page.error or "")
    assert await post_service.list_posts(fc.rt) == []


# --- the command --------------------------------------------------------------------------


def feed_config(directory: Path, feeds: list[str]) -> str:
    path = directory / "fedcomments.toml"
    listed = ", ".join(f'"{f}"' for f in feeds)
    path.write_text(
        f'[storage]\ndatabase = "{directory / "db.sqlite3"}"\n'
        "[federation]\nallow_private_addresses = true\n"
        f"[blog]\nfeeds = [{listed}]\n", encoding="utf-8")
    return str(path)


async def test_posts_sync_prints_what_it_did(tmp_path: Path, static_blog: StaticBlog) -> None:
    """Given a configured RSS feed, when `posts sync` runs with --dry-run, then for real,
    then after an edit, then unchanged, then it prints (and --json lists) what would be
    added, what was added quietly, what was updated and that nothing changed."""
    now = datetime.now(UTC).replace(microsecond=0)
    static_blog.posts = old_posts(lambda: now)
    feed = static_blog.url + "/index.xml"
    config = feed_config(tmp_path, [feed])

    dry = await run_cli("posts", "sync", "--config", config, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    [report] = dry.json()["feeds"]
    assert dry.json()["dry_run"] is True
    assert [(e["title"], e["announced"]) for e in report["added"]] == [
        ("Second post", False), ("First post", False)]
    listed = await run_cli("posts", "list", "--config", config, "--json")
    assert listed.json()["posts"] == []

    done = await run_cli("posts", "sync", "--config", config)
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == (
        f"{feed}: 2 added, 0 updated, 0 skipped (first poll: older entries are imported "
        "without announcing them)")
    assert f"  added    {static_blog.permalink('second')}  Second post  (quietly)" in done.out

    static_blog.posts[1].tags = ("edited",)
    edited = await run_cli("posts", "sync", "--config", config, "--feed", feed, "--json")
    [report] = edited.json()["feeds"]
    assert [e["url"] for e in report["updated"]] == [static_blog.permalink("second")]
    assert [e["reason"] for e in report["skipped"]] == ["unchanged"]

    again = await run_cli("posts", "sync", "--config", config)
    assert (again.code, again.out) == (0, f"{feed}: not modified since the last poll\n")

    other = await run_cli("posts", "sync", "--config", config, "--feed", "https://x.example/f")
    assert other.code == 2 and "is not one of [blog] feeds" in other.err
    static_blog.down = 500
    failed = await run_cli("posts", "sync", "--config", config, "--dry-run")
    assert failed.code == 1 and "failed: GET" in failed.out


# --- reading the formats ------------------------------------------------------------------

JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "B",
 "home_page_url": "https://blog.example/",
 "items": [
  {"id": "1", "url": "/one/", "title": "One", "content_html": "<p>Hi <b>there</b></p>",
   "date_published": "2024-05-01T10:00:00Z", "tags": ["a b", "c"],
   "image": "https://blog.example/1.png"},
  {"id": 2, "url": "https://blog.example/two/", "content_text": "Just a note"},
  {"id": "3", "url": "https://blog.example/3/", "title": 3, "content_text": "x"},
  {"id": "4", "url": "https://blog.example/4/", "title": "No content"},
  {"id": "5", "url": "https://blog.example/5/", "title": "Bad date", "content_text": "x",
   "date_published": "yesterday"}
 ]}"""


def test_json_feed_is_read_strictly() -> None:
    """Given a JSON Feed 1.1 with good and malformed items, when it is read, then good items
    become entries (relative URLs resolved, HTML reduced to text, multi-word tags joined)
    and each malformed one names its problem."""
    feed = parse_feed(JSON_FEED, "https://blog.example/feed.json")
    assert feed.format == "json1.1"
    one, two, three, four, five = feed.entries
    assert (one.permalink, one.title, one.summary, one.tags, one.image) == (
        "https://blog.example/one/", "One", "Hi there", ("aB", "c"),
        "https://blog.example/1.png")
    assert one.published is not None and one.published.isoformat() == "2024-05-01T10:00:00+00:00"
    assert (two.id, two.title, two.problem) == ("2", "Just a note", None)
    assert three.problem == "item title is not a string"
    assert four.problem == "item without content_html or content_text"
    assert five.problem == "item date 'yesterday' is not RFC 3339"


@pytest.mark.parametrize("body", [
    b'{"version": "https://jsonfeed.org/version/9", "title": "x", "items": []}',
    b'{"version": "https://jsonfeed.org/version/1.1", "items": []}',
    b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": {}}',
    b'["not", "a", "feed"]',
    b'{"version": NaN}',
])
def test_malformed_json_feeds_are_refused(body: bytes) -> None:
    """Given a JSON document that is not a JSON Feed 1.x, when it is read, then it is
    refused with a FeedError."""
    with pytest.raises(FeedError):
        parse_feed(body, "https://blog.example/feed.json")


def test_xml_entities_are_refused() -> None:
    """Given an RSS feed that declares entities (a "billion laughs") or an external one,
    when it is read, then it is refused before the feed parser expands anything."""
    laughs = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              b'<rss version="2.0"><channel><title>&b;</title></channel></rss>')
    external = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<rss version="2.0"><channel><title>&x;</title></channel></rss>')
    for body in (laughs, external):
        with pytest.raises(FeedError, match="refused XML"):
            parse_feed(body, "https://blog.example/index.xml", "application/rss+xml")


@pytest.mark.parametrize(("blog", "message"), [
    ({"feeds": "https://blog.example/index.xml"}, "[blog] feeds: expected a list of feed URLs"),
    ({"feeds": ["ftp://blog.example/index.xml"]}, "is not an absolute http(s) URL"),
    ({"feeds": ["https://user:pw@blog.example/feed"]}, "must not contain credentials"),
    ({"feeds": [{"url": "https://blog.example/f", "private": True}]}, "unknown feed option"),
    ({"feeds": [{"url": "https://blog.example/f", "allow_private": "yes"}]},
     "allow_private must be true or false"),
    ({"feeds": ["https://blog.example/f", "https://blog.example/f"]}, "is listed twice"),
    ({"poll_interval": 5}, "[blog] poll_interval: must be at least 30 seconds"),
])
def test_blog_settings_are_checked(tmp_path: Path, blog: dict[str, Any], message: str) -> None:
    """Given a config with a bad [blog] key, when it is loaded, then the error names the
    file and the key."""
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"blog": blog}, source="site.toml")
    assert str(caught.value).startswith("site.toml: [blog] ") and message in str(caught.value)
