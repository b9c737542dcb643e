"""Reader comments through the JSON API: every defence, moderation, the author's secret."""

from __future__ import annotations

from typing import Any

from fedcomments.services import moderation
from fedcomments.services.reader_guard import client_ip
from tests.conftest import Instance
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import form_token, post_local, thread

BLOG = "https://blog.example"


async def count_comments(fc: Instance) -> int:
    row = await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments")
    return int(row[0])


async def body(resp: Any) -> dict[str, Any]:
    return await resp.json()


async def test_published_comment_is_text_with_links_and_no_email(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given policy none, a comment from the blog's origin is published: plain text becomes
    paragraphs and nofollow links, raw HTML stays text, and the email is never returned."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       server={"blog_origins": [BLOG]})
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], origin=BLOG, name="Bob", email="bob@example.org",
                            website="bob.example", text="Hi <b>there</b>\n\nsee https://x.org.")
    assert resp.status == 201, await resp.text()
    assert resp.headers["Access-Control-Allow-Origin"] == BLOG
    data = await body(resp)
    assert data["pending"] is False and data["held_because"] == []
    c = data["comment"]
    assert c["content"] == ('<p>Hi &lt;b&gt;there&lt;/b&gt;</p><p>see <a href="https://x.org" '
                            'rel="nofollow noopener noreferrer ugc">https://x.org</a>.</p>')
    assert c["author"] == {"kind": "reader", "name": "Bob", "handle": None, "url": None,
                           "avatar": None, "website": "https://bob.example",
                           "avatar_2x": None, "emojis": []}
    shown = await thread(fc, id=str(post["id"]))
    assert shown["comments"][0]["id"] == c["id"]
    assert "bob@example.org" not in (await resp.text()) + str(shown)
    row = await fc.rt.db.read.fetchone("SELECT author_email, source, status FROM comments")
    assert tuple(row) == ("bob@example.org", "Hi <b>there</b>\n\nsee https://x.org.", "approved")


async def test_first_time_policy_holds_new_readers_and_trusts_approved_ones(
        make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given first-time moderation, a new reader waits; only they see the comment (with its
    secret); once approved, the same name and email go straight through, another email not."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], name="Ann", email="ann@example.org", text="One")
    first = await body(resp)
    assert resp.status == 201 and first["pending"] is True
    assert first["held_because"] == ["first comment under this name and email"]
    assert (await thread(fc, id=str(post["id"])))["count"] == 0
    url = f"{fc.url}/api/v1/comments/{first['comment']['id']}"
    mine = await fc.session.get(url, headers={"X-Comment-Secret": first["secret"]})
    assert mine.status == 200
    assert (await mine.json())["comment"]["status"] == "pending"
    for headers in ({}, {"X-Comment-Secret": "wrong"}):
        assert (await fc.session.get(url, headers=headers)).status == 404
    await moderation.approve_comments(fc.rt, [first["comment"]["id"]])
    second = await body(await post_local(fc, post["id"], name="Ann", email="ANN@example.org",
                                         text="Two", wait=61))
    assert second["pending"] is False
    other = await body(await post_local(fc, post["id"], name="Ann", email="x@example.org",
                                        text="Three", wait=61))
    assert other["pending"] is True
    assert (await thread(fc, id=str(post["id"])))["count"] == 2


async def test_policy_all_holds_everyone(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given policy all, even a reader with an approved comment waits."""
    fc: Instance = await make_instance(moderation={"policy": "all"})
    post = await add_post_via_api(fc)
    first = await body(await post_local(fc, post["id"], email="a@example.org", text="One"))
    await moderation.approve_comments(fc.rt, [first["comment"]["id"]])
    again = await body(await post_local(fc, post["id"], email="a@example.org", text="Two",
                                        wait=61))
    assert again["pending"] is True
    assert again["held_because"] == ["every comment is approved by hand"]


async def test_honeypot_refuses_and_stores_nothing(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given the hidden field filled in (a bot), the comment is refused and nothing stored."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], homepage="http://spam.example")
    assert resp.status == 400
    assert (await body(resp))["errors"] == {"form": "this looks automated and was not saved"}
    assert await count_comments(fc) == 0


async def test_form_token_is_required_signed_and_timed(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a missing, forged, foreign or expired token the comment is refused; a form sent
    within seconds of being shown is held for moderation."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    other = await add_post_via_api(fc, "b")
    good = await form_token(fc, post["id"])
    issued, _, mac = good.partition(".")
    for token in ("", "garbage", f"{int(issued) + 100}.{mac}",
                  await form_token(fc, other["id"])):
        resp = await post_local(fc, post["id"], token=token)
        assert resp.status == 400, token
        assert list((await body(resp))["errors"]) == ["token"]
    stale = await form_token(fc, post["id"])
    fc.clock.advance(hours=49)
    resp = await post_local(fc, post["id"], token=stale)
    assert "expired" in (await body(resp))["errors"]["token"]
    assert await count_comments(fc) == 0
    fast = await body(await post_local(fc, post["id"], wait=1))
    assert fast["pending"] is True
    assert fast["held_because"] == ["sent too quickly after the form was shown"]


async def test_rate_limit_per_address(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given the default of 2 per minute, the third comment from one address is refused with
    Retry-After and stores nothing; a minute later it is accepted."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    for n in range(2):
        assert (await post_local(fc, post["id"], text=f"n{n}", wait=5)).status == 201
    resp = await post_local(fc, post["id"], text="third", wait=5)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) == 50
    assert "try again" in (await body(resp))["error"]
    assert await count_comments(fc) == 2
    fc.clock.advance(seconds=50)
    assert (await post_local(fc, post["id"], text="third", wait=1)).status == 201


async def test_forwarded_for_counts_only_behind_trusted_proxies(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given the proxy 127.0.0.1 trusted, X-Forwarded-For separates readers; without that
    trust the header is ignored and every request counts for the socket's address."""
    proxied: Instance = await make_instance(moderation={"policy": "none"},
                                            server={"trusted_proxies": ["127.0.0.0/8"]})
    post = await add_post_via_api(proxied)
    for i in range(4):
        resp = await post_local(proxied, post["id"], text=f"t{i}",
                                headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert resp.status == 201, await resp.text()
    direct: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(direct)
    statuses = [(await post_local(direct, post["id"], text=f"t{i}",
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"})).status
                for i in range(3)]
    assert statuses == [201, 201, 429]


def test_client_ip_reads_forwarded_for_right_to_left() -> None:
    """Given chains of proxies, the client is the first untrusted hop from the right."""
    trusted = ("10.0.0.0/8", "::1")
    assert client_ip("10.0.0.1", "1.2.3.4, 10.0.0.2", trusted) == "1.2.3.4"
    assert client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4", trusted) == "1.2.3.4"
    assert client_ip("192.0.2.1", "1.2.3.4", trusted) == "192.0.2.1"
    assert client_ip("::1", "2001:db8::1", trusted) == "2001:db8::1"
    assert client_ip("10.0.0.1", None, trusted) == "10.0.0.1"


async def test_ipv6_is_limited_per_64(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given readers behind a trusted proxy, two addresses in one IPv6 /64 share a limit while
    another /64 has its own."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       server={"trusted_proxies": ["127.0.0.1"]})
    post = await add_post_via_api(fc)

    async def send(ip: str, text: str) -> int:
        resp = await post_local(fc, post["id"], text=text, headers={"X-Forwarded-For": ip})
        return resp.status

    assert await send("2001:db8:1:2::1", "a") == 201
    assert await send("2001:db8:1:2:ffff::9", "b") == 201
    assert await send("2001:db8:1:2:abcd::1", "c") == 429
    assert await send("2001:db8:1:3::1", "d") == 201


async def test_every_field_is_checked_and_named(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given several bad fields at once, each error names its field, and nothing is stored."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"max_text_length": 50})
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], name="N" * 101, email="not-an-email",
                            website="javascript:alert(1)", text="x" * 51)
    assert resp.status == 400
    assert (await body(resp))["errors"] == {
        "name": "at most 100 characters", "email": "not an email address",
        "website": "must be a web address like https://example.org",
        "text": "at most 50 characters (you wrote 51)"}
    resp = await post_local(fc, post["id"], name=" \u202e\x07 ", text="  ")
    assert (await body(resp))["errors"] == {"name": "please give a name",
                                             "text": "please write a comment"}
    resp = await post_local(fc, post["id"], colour="red")
    assert (await body(resp))["errors"] == {"colour": "unknown field"}
    resp = await post_local(fc, post["id"], website="https://" + "w" * 500)
    assert list((await body(resp))["errors"]) == ["website"]
    assert await count_comments(fc) == 0


async def test_names_lose_control_and_bidi_characters(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a name with a right-to-left override, a bell and line breaks, the stored and
    shown name has none of them."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    resp = await post_local(fc, post["id"], name="Al\u202eice\x07\n  Smith\u2066")
    assert (await body(resp))["comment"]["author"]["name"] == "Alice Smith"


async def test_too_many_links_wait_for_approval(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given max_links 2, a comment with three links is held; two links go through."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    two = await body(await post_local(fc, post["id"], text="https://a.example https://b.example"))
    assert two["pending"] is False
    three = await body(await post_local(
        fc, post["id"], text="https://a.example https://b.example https://c.example", wait=61))
    assert three["pending"] is True and three["held_because"] == ["too many links"]


async def test_duplicates_are_refused(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a comment posted twice (a double click, a replayed request), the second is
    refused next to the text; another reader may say the same thing."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       server={"trusted_proxies": ["127.0.0.1"]})
    post = await add_post_via_api(fc)
    assert (await post_local(fc, post["id"], text="Same")).status == 201
    again = await post_local(fc, post["id"], text="  Same ")
    assert again.status == 400
    assert (await body(again))["errors"] == {"text": "you already posted this comment"}
    other = await post_local(fc, post["id"], name="Other", text="Same",
                             headers={"X-Forwarded-For": "198.51.100.7"})
    assert other.status == 201
    assert await count_comments(fc) == 2


async def test_origin_check(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given no Origin, a foreign Origin or "null", posting is forbidden; a Referer from the
    blog is accepted when the browser sends no Origin."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       server={"blog_origins": [BLOG]})
    post = await add_post_via_api(fc)
    for origin in (None, "https://evil.example", "null", "https://blog.example.evil.example"):
        resp = await post_local(fc, post["id"], origin=origin)
        assert resp.status == 403, origin
    assert await count_comments(fc) == 0
    resp = await post_local(fc, post["id"], origin=None,
                            headers={"Referer": f"{BLOG}/a/"})
    assert resp.status == 201


async def test_parent_must_be_a_public_comment_of_the_same_post(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a pending comment or one on another post, replying to it is refused."""
    fc: Instance = await make_instance(moderation={"policy": "all"})
    post = await add_post_via_api(fc)
    other = await add_post_via_api(fc, "b")
    pending = (await body(await post_local(fc, post["id"], text="p")))["comment"]["id"]
    resp = await post_local(fc, post["id"], parent=str(pending), text="r", wait=61)
    assert (await body(resp))["errors"] == {"parent": "the comment you answer is not available"}
    await moderation.approve_comments(fc.rt, [pending])
    resp = await post_local(fc, other["id"], parent=str(pending), text="r2", wait=61)
    assert resp.status == 400
    resp = await post_local(fc, post["id"], parent=str(pending), text="r3", wait=61)
    assert resp.status == 201
    assert (await body(resp))["comment"]["parent_id"] == pending


async def test_edit_and_delete_with_the_secret_for_15_minutes(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given the secret returned on posting, the author edits and deletes within 15 minutes;
    a wrong secret is 404, and after the window changes are refused."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    posted = await body(await post_local(fc, post["id"], text="Frist"))
    url = f"{fc.url}/api/v1/comments/{posted['comment']['id']}"
    mine = {"X-Comment-Secret": posted["secret"], "Origin": fc.url}
    wrong = await fc.session.patch(url, json={"text": "x"},
                                   headers={**mine, "X-Comment-Secret": "nope"})
    assert wrong.status == 404
    fc.clock.advance(minutes=10)
    edited = await fc.session.patch(url, json={"text": "First"}, headers=mine)
    assert edited.status == 200, await edited.text()
    shown = (await thread(fc, id=str(post["id"])))["comments"][0]
    assert (shown["content"], shown["edited"]) == ("<p>First</p>", True)
    no_origin = await fc.session.delete(url, headers={"X-Comment-Secret": posted["secret"]})
    assert no_origin.status == 403
    assert (await fc.session.delete(url, headers=mine)).status == 200
    assert (await thread(fc, id=str(post["id"])))["count"] == 0
    late = await body(await post_local(fc, post["id"], text="Late", wait=61))
    fc.clock.advance(minutes=16)
    resp = await fc.session.patch(f"{fc.url}/api/v1/comments/{late['comment']['id']}",
                                  json={"text": "changed"},
                                  headers={"X-Comment-Secret": late["secret"], "Origin": fc.url})
    assert resp.status == 403 and "15 minutes" in (await body(resp))["error"]


async def test_delete_keeps_a_placeholder_above_replies(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a reader's comment with a reply, deleting it leaves a "deleted" placeholder so the
    reply stays threaded."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    parent = await body(await post_local(fc, post["id"], text="Parent"))
    pid = parent["comment"]["id"]
    await post_local(fc, post["id"], parent=str(pid), text="Child", name="Other", wait=61)
    resp = await fc.session.delete(f"{fc.url}/api/v1/comments/{pid}", headers={
        "X-Comment-Secret": parent["secret"], "Origin": fc.url})
    assert (await body(resp))["kept_as_placeholder"] is True
    [top] = (await thread(fc, id=str(post["id"])))["comments"]
    assert top["deleted"] is True and top["replies"][0]["content"] == "<p>Child</p>"


async def test_edit_that_adds_links_goes_back_to_moderation(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a published comment, an edit adding three links takes it off the thread."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    posted = await body(await post_local(fc, post["id"], text="Innocent"))
    resp = await fc.session.patch(
        f"{fc.url}/api/v1/comments/{posted['comment']['id']}",
        json={"text": "https://a.example https://b.example https://c.example"},
        headers={"X-Comment-Secret": posted["secret"], "Origin": fc.url})
    assert (await body(resp))["comment"]["status"] == "pending"
    assert (await thread(fc, id=str(post["id"])))["count"] == 0


async def test_approved_comment_is_federated(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given policy none, a published reader comment gets its ActivityPub id at once (the
    replies service federated it); a pending one does not."""
    fc: Instance = await make_instance(moderation={"policy": "first-time"})
    post = await add_post_via_api(fc)
    pending = await body(await post_local(fc, post["id"], email="z@example.org", text="Wait"))
    row = await fc.rt.db.read.fetchone("SELECT ap_id FROM comments WHERE id = ?",
                                       (pending["comment"]["id"],))
    assert row[0] is None
    await moderation.approve_comments(fc.rt, [pending["comment"]["id"]])
    trusted = await body(await post_local(fc, post["id"], email="z@example.org", text="Now",
                                          wait=61))
    assert trusted["pending"] is False
    row = await fc.rt.db.read.fetchone("SELECT ap_id FROM comments WHERE id = ?",
                                       (trusted["comment"]["id"],))
    assert row[0] == fc.rt.urls.comment(trusted["comment"]["id"])
