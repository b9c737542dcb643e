"""Posts: registered from the CLI and the admin API, served as Article and HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedcomments.cli import main
from tests.conftest import Instance
from tests.helpers.fediverse import activity, note
from tests.helpers.inbox import start_blog_with_post


def cli(instance: Instance, tmp_path: Path, *argv: str) -> list[str]:
    cfg = tmp_path / "cli.toml"
    s = instance.settings
    cfg.write_text(
        f'[server]\nbase_url = "{s.server.base_url}"\n'
        f'[storage]\ndatabase = "{s.storage.database}"\n'
    )
    return [*argv, "--config", str(cfg)]


async def _add_via_api(instance: Instance, **fields: object) -> dict[str, object]:
    resp = await instance.admin("POST", "/api/v1/admin/posts", json=fields)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def test_cli_add_shows_in_list_and_outbox(
    instance: Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given `posts add`, the post is listed with its AP id and appears in the outbox."""
    content = tmp_path / "body.html"
    content.write_text("<p>Hello <script>alert(1)</script><b>world</b></p>")
    argv = cli(instance, tmp_path, "posts", "add", "--url", "https://blog.example/2024/hello/",
               "--title", "Hello", "--summary", "First post", "--tag", "intro", "--tag", "#Tests",
               "--content-file", str(content), "--published", "2024-05-01T10:00:00Z")
    assert await _run(argv) == 0
    capsys.readouterr()
    assert await _run(cli(instance, tmp_path, "posts", "list", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)["posts"]
    assert len(listed) == 1
    post = listed[0]
    assert post["ap_id"] == f"{instance.url}/posts/hello"
    assert post["tags"] == ["intro", "Tests"]

    outbox = await (await instance.get("/users/blog/outbox")).json(content_type=None)
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 1
    page = await (await instance.get("/users/blog/outbox?page=1")).json(content_type=None)
    create = page["orderedItems"][0]
    assert create["type"] == "Create"
    assert create["object"]["id"] == post["ap_id"]
    assert "<script>" not in create["object"]["content"]


async def _run(argv: list[str]) -> int:
    # The CLI runs its own event loop; run it in a thread so the test's loop stays free.
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_same_permalink_updates(instance: Instance) -> None:
    """Given the same permalink twice, there is one post with the newer title."""
    first = await _add_via_api(instance, url="https://blog.example/a/", title="One")
    second = await _add_via_api(instance, url="https://blog.example/a/", title="Two")
    assert first["id"] == second["id"]
    listed = await (await instance.admin("GET", "/api/v1/admin/posts")).json()
    assert [p["title"] for p in listed["posts"]] == ["Two"]


async def test_article_document(instance: Instance) -> None:
    """Given a post, its AP URL answers the Article with every field and Vary: Accept."""
    post = await _add_via_api(instance, url="https://blog.example/p/", title="T",
                              summary="S", tags=["one"], image="https://blog.example/i.png",
                              published="2024-01-02")
    resp = await instance.get(str(post["ap_id"]).removeprefix(instance.url),
                              accept='application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
    assert resp.status == 200
    assert resp.headers["Vary"] == "Accept"
    doc = await resp.json(content_type=None)
    assert doc["id"] == post["ap_id"] and doc["type"] == "Article"
    assert doc["attributedTo"] == f"{instance.url}/users/blog"
    assert doc["name"] == "T" and doc["summary"] == "S"
    assert doc["url"] == "https://blog.example/p/"
    assert doc["published"] == "2024-01-02T00:00:00Z"
    assert doc["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert doc["cc"] == [f"{instance.url}/users/blog/followers"]
    assert doc["tag"] == [{"type": "Hashtag", "name": "#one", "href": f"{instance.url}/tags/one"}]
    assert doc["image"] == {"type": "Image", "url": "https://blog.example/i.png"}
    assert doc["replies"] == f"{post['ap_id']}/replies"
    replies = await (await instance.get(f"/posts/{post['slug']}/replies")).json(content_type=None)
    assert replies["totalItems"] == 0


async def test_post_html_page(instance: Instance) -> None:
    """Given a browser, the post URL answers HTML with title, summary and the blog link."""
    post = await _add_via_api(instance, url="https://blog.example/h/", title="<Hi>", summary="Sum")
    resp = await instance.get(f"/posts/{post['slug']}", accept="text/html")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["Vary"] == "Accept"
    text = await resp.text()
    assert "<h1>&lt;Hi&gt;</h1>" in text
    assert 'href="https://blog.example/h/"' in text
    assert f'<link rel="alternate" type="application/activity+json" href="{post["ap_id"]}">' in text


async def test_deleted_post_is_tombstone(instance: Instance) -> None:
    """Given a deleted post, AS clients get 410 with a Tombstone."""
    post = await _add_via_api(instance, url="https://blog.example/d/", title="D")
    resp = await instance.admin("DELETE", f"/api/v1/admin/posts/{post['id']}")
    assert resp.status == 200
    resp = await instance.get(f"/posts/{post['slug']}")
    assert resp.status == 410
    doc = await resp.json(content_type=None)
    assert doc["type"] == "Tombstone" and doc["id"] == post["ap_id"]
    assert doc["formerType"] == "Article"


async def test_admin_api_needs_token(instance: Instance) -> None:
    """Without the bearer token the admin API answers 401 and stores nothing."""
    resp = await instance.session.post(f"{instance.url}/api/v1/admin/posts",
                                       json={"url": "https://blog.example/x/", "title": "X"})
    assert resp.status == 401
    resp = await instance.admin("GET", "/api/v1/admin/posts",
                                headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    listed = await (await instance.admin("GET", "/api/v1/admin/posts")).json()
    assert listed["posts"] == []


async def test_admin_api_validation(instance: Instance) -> None:
    """Bad input gets 400 naming the field; nothing stored."""
    for body, field in (({"title": "x"}, "url"), ({"url": "ftp://x", "title": "x"}, "url"),
                        ({"url": "https://b.example/", "title": "x", "published": "soon"},
                         "published"),
                        ({"url": "https://b.example/", "title": "x", "colour": "red"}, "colour")):
        resp = await instance.admin("POST", "/api/v1/admin/posts", json=body)
        assert resp.status == 400
        assert (await resp.json())["field"] == field
    listed = await (await instance.admin("GET", "/api/v1/admin/posts")).json()
    assert listed["posts"] == []


async def test_future_post_hidden_until_published(instance: Instance) -> None:
    """Given a post scheduled later, it is 404 and not in the outbox until its time."""
    post = await _add_via_api(instance, url="https://blog.example/f/", title="F",
                              published="2999-01-01T00:00:00Z")
    assert (await instance.get(f"/posts/{post['slug']}")).status == 404
    outbox = await (await instance.get("/users/blog/outbox")).json(content_type=None)
    assert outbox["totalItems"] == 0


async def test_listing_counts_comments_and_reactions(
    make_instance, remote, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    """Given a public reply, a followers-only reply and a like, listings count each kind."""
    blog = await start_blog_with_post(make_instance)
    alice = remote.actor("alice")
    for visibility in ("public", "followers"):
        reply = note(alice, blog.post.ap_id, visibility=visibility)
        assert (await blog.send(alice, activity(alice, "Create", reply))).status == 202
    assert (await blog.send(alice, activity(alice, "Like", blog.post.ap_id))).status == 202
    expected = {"comments": 1, "pending": 0, "private": 1, "likes": 1, "boosts": 0}

    listed = await (await blog.instance.admin("GET", "/api/v1/admin/posts")).json()
    assert listed["posts"][0]["counts"] == expected
    assert await _run(cli(blog.instance, tmp_path, "posts", "show", str(blog.post.id),
                          "--json")) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == expected
    assert await _run(cli(blog.instance, tmp_path, "posts", "list")) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:7] == ["ID", "PUBLISHED", "TITLE", "COMMENTS", "PENDING", "LIKES",
                                    "BOOSTS"]
    assert table[1].split()[-5:-1] == ["1", "0", "1", "0"]


async def test_reregistering_unchanged_post_keeps_updated(instance: Instance) -> None:
    """Given a site build re-registering an unchanged post, `updated` does not move."""
    first = await _add_via_api(instance, url="https://blog.example/same/", title="Same")
    instance.clock.advance(hours=1)
    again = await _add_via_api(instance, url="https://blog.example/same/", title="Same")
    assert again["updated"] is None and again == first
    instance.clock.advance(hours=1)
    changed = await _add_via_api(instance, url="https://blog.example/same/", title="New")
    assert changed["updated"] == instance.clock.current.isoformat()
