"""`fedcomments export`: everything the admin sees as JSON, read back by `import fedcomments`
on another server into the same public threads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedcomments.ap.sanitize import sanitize_html
from fedcomments.services import replies
from tests.conftest import Instance
from tests.helpers.admin import run_cli, write_config
from tests.helpers.exports import WpComment, WpItem, database_state, workdir, write_wxr
from tests.helpers.fediverse import FakeInstance, activity, deliver
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import post_local, remote_reply, thread


def _shape(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a reader sees of a thread, without the ids that differ between servers (and
    the blog's own handle, which names the server)."""
    return [{
        "author": {k: n["author"].get(k) for k in ("kind", "name", "handle", "website",
                                                   "avatar")
                   if not (k == "handle" and n["author"]["kind"] == "owner")},
        **{k: n.get(k) for k in ("published", "updated", "edited", "deleted", "status",
                                 "summary", "sensitive", "language", "attachments")},
        # An import sanitises every text it reads, even the blog's own answers (the file
        # could come from anywhere): the same allowlist adds its rel to their links.
        "content": sanitize_html(n["content"]),
        "origin": n.get("origin"),
        "reactions": {k: n["reactions"][k] for k in ("likes", "boosts")},
        "replies": _shape(n["replies"]),
    } for n in nodes]


async def _blog_with_everything(fc: Instance, remote: FakeInstance, tmp_path: Path
                                ) -> dict[str, Any]:
    """A post with a fediverse reply, the owner's answer (liked by someone), a reader's
    comment (with an email) under it, a followers-only reply, a rejected comment and an
    imported WordPress comment; returns the post."""
    post = await add_post_via_api(fc, "moving")
    alice, bob = remote.actor("alice"), remote.actor("bob")
    reply_id = await remote_reply(fc, alice, post["ap_id"], content="<p>From Mastodon</p>")
    answer = await replies.owner_reply(fc.rt, reply_id, "Thanks, Alice!")
    resp = await deliver(fc.session, bob, f"{fc.url}/inbox",
                         activity(bob, "Like", answer.ap_id))
    assert resp.status == 202
    resp = await post_local(fc, post["id"], parent=str(answer.id), name="Reader",
                            email="reader@example.org", website="https://reader.example",
                            text="Agreed with both of you.")
    assert resp.status == 201, await resp.text()
    await remote_reply(fc, bob, post["ap_id"], content="<p>Just for followers</p>",
                       visibility="followers")
    resp = await post_local(fc, post["id"], name="Troll", text="Go away")
    rejected = (await resp.json())["comment"]["id"]
    assert (await run_cli("comments", "reject", str(rejected), "--config",
                          write_config(fc, tmp_path))).code == 0
    wxr = write_wxr(tmp_path / "wp.xml", "https://old.blog.example", [WpItem(
        link="https://blog.example/moving/", title="Moving",
        comments=[WpComment(7, "Old Reader", "2015-02-03 04:05:06", "From the old blog",
                            email="old@example.org")])])
    run = await run_cli("import", "wordpress", str(wxr), "--config", write_config(fc, tmp_path))
    assert run.code == 0, run.err
    return post


async def test_export_then_import_gives_the_same_public_threads(
        make_instance: Any, remote: FakeInstance, tmp_path: Path) -> None:
    """Given a blog with fediverse replies, reactions, the owner's answers, readers'
    comments, a private reply, a rejected comment and an imported one, when it is exported
    and the file imported into a second server, then that server shows the same public
    thread, holds the same private and rejected comments for its admin, and a second
    import (or the original WordPress export) changes nothing."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"min_form_seconds": 0})
    post = await _blog_with_everything(fc, remote, workdir(tmp_path, "a"))
    out = tmp_path / "comments.json"
    run = await run_cli("export", "-o", str(out), "--config", write_config(fc, tmp_path))
    assert run.code == 0, run.err
    assert out.stat().st_mode & 0o777 == 0o600  # it holds readers' email addresses
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["format"], doc["version"], doc["public_only"]) == ("fedcomments-export", 1,
                                                                  False)
    assert [p["url"] for p in doc["posts"]] == [post["url"]]
    by_text = {c["content"]: c for c in doc["comments"]}
    assert len(doc["comments"]) == 6
    reader = by_text["<p>Agreed with both of you.</p>"]
    assert reader["author"]["email"] == "reader@example.org"
    assert reader["parent"] == {"source": "fedcomments", "site": fc.url.split("://")[1],
                                "id": str(reader["parent_id"])}
    fediverse = by_text["<p>From Mastodon</p>"]
    assert fediverse["author"]["actor"]["id"].endswith("/users/alice")
    [owner] = [c for c in doc["comments"] if c["origin"] == "owner"]
    assert "Thanks, Alice!" in owner["content"]
    assert [r["type"] for r in owner["reactions"]] == ["like"]
    assert owner["reactions"][0]["actor"]["id"].endswith("/users/bob")
    assert by_text["<p>From the old blog</p>"]["key"] == {
        "source": "wordpress", "site": "old.blog.example", "id": "7"}
    assert {c["status"] for c in doc["comments"]} == {"approved", "rejected"}
    assert {c["visibility"] for c in doc["comments"]} == {"public", "unlisted", "followers"}

    other: Instance = await make_instance(moderation={"policy": "all"})
    config = write_config(other, workdir(tmp_path, "b"))
    run = await run_cli("import", "fedcomments", str(out), "--json", "--config", config)
    assert run.code == 0, run.err
    assert (run.json()["imported"], run.json()["reactions"]) == (6, 1)
    original = await thread(fc, url=post["url"])
    copied = await thread(other, url=post["url"])
    assert copied["count"] == original["count"] == 4
    assert json.dumps(_shape(copied["comments"]), indent=1) == json.dumps(
        _shape(original["comments"]), indent=1)
    for status in ("private", "rejected"):
        listed = await run_cli("comments", "list", "--status", status, "--json", "--config",
                               config)
        assert len(listed.json()["comments"]) == 1

    before = await database_state(other.rt)
    for fmt, path in (("fedcomments", out), ("wordpress", tmp_path / "a" / "wp.xml")):
        again = await run_cli("import", fmt, str(path), "--json", "--config", config)
        assert (again.json()["imported"], again.json()["reactions"]) == (0, 0)
    assert await database_state(other.rt) == before


async def test_public_only_export_holds_what_the_public_sees_and_no_email(
        make_instance: Any, remote: FakeInstance, tmp_path: Path) -> None:
    """Given the same blog, when exported with --public-only for one post, then the private
    and rejected comments and every email are left out."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"min_form_seconds": 0})
    post = await _blog_with_everything(fc, remote, workdir(tmp_path, "a"))
    run = await run_cli("export", "--public-only", "--post", post["url"], "--config",
                        write_config(fc, tmp_path))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["public_only"] is True
    assert len(doc["comments"]) == 4
    assert {(c["status"], c["visibility"]) for c in doc["comments"]} == {
        ("approved", "public"), ("approved", "unlisted")}
    assert "@example.org" not in run.out
    bad = await run_cli("export", "--post", "nope", "--config", write_config(fc, tmp_path))
    assert (bad.code, bad.out) == (2, "") and "no post 'nope'" in bad.err


async def test_a_deleted_post_stays_deleted_when_its_export_is_imported(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a blog with a reader's comment on each of two posts, one of which the owner
    deleted (its thread answers 410), when exported and imported into a second server,
    then that server's thread of the deleted post answers 410 too, and an export with
    --public-only holds no comment of it."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"min_form_seconds": 0})
    config = write_config(fc, tmp_path)
    for slug in ("kept", "gone"):
        post = await add_post_via_api(fc, slug)
        resp = await post_local(fc, post["id"], name="Reader", text=f"On {slug}")
        assert resp.status == 201, await resp.text()
    assert (await run_cli("posts", "delete", "gone", "--config", config)).code == 0
    gone = "https://blog.example/gone/"
    resp = await fc.session.get(f"{fc.url}/api/v1/thread", params={"url": gone})
    assert resp.status == 410

    public = await run_cli("export", "--public-only", "--config", config)
    assert public.code == 0, public.err
    assert [c["post"] for c in public.json()["comments"]] == ["https://blog.example/kept/"]

    out = tmp_path / "comments.json"
    assert (await run_cli("export", "-o", str(out), "--config", config)).code == 0
    other: Instance = await make_instance()
    run = await run_cli("import", "fedcomments", str(out), "--json", "--config",
                        write_config(other, workdir(tmp_path, "b")))
    assert run.code == 0, run.err
    assert [c["content"] for c in (await thread(other, url="https://blog.example/kept/"))[
        "comments"]] == ["<p>On kept</p>"]
    resp = await other.session.get(f"{other.url}/api/v1/thread", params={"url": gone})
    assert resp.status == 410


async def test_importing_a_servers_own_export_into_it_changes_nothing(
        make_instance: Any, remote: FakeInstance, tmp_path: Path) -> None:
    """Given a blog with readers' comments, the owner's answer, fediverse replies and an
    imported comment, when its own export is imported back into it, then every comment is
    found already here and nothing at all changes (no second copy of any comment)."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"min_form_seconds": 0})
    await _blog_with_everything(fc, remote, workdir(tmp_path, "a"))
    config = write_config(fc, tmp_path)
    out = tmp_path / "comments.json"
    assert (await run_cli("export", "-o", str(out), "--config", config)).code == 0
    before = await database_state(fc.rt)
    run = await run_cli("import", "fedcomments", str(out), "--json", "--config", config)
    assert run.code == 0, run.err
    assert (run.json()["imported"], run.json()["existing"]) == (0, 6)
    assert await database_state(fc.rt) == before
