"""The post's HTML page: the thread as a browser without JavaScript sees it, and the form."""

from __future__ import annotations

import re

import html5lib

from fedcomments.services import moderation, replies
from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance, activity, deliver, note
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import form_token, post_local, remote_reply

HTML = "text/html"


def assert_valid_html5(text: str) -> None:
    """The document parses with no error under the HTML5 parsing algorithm."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    parser.parse(text)
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate ids"


async def page(fc: Instance, slug: str, query: str = "") -> str:
    resp = await fc.get(f"/posts/{slug}{query}", accept=HTML)
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def test_thread_page_shows_every_detail(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a fediverse reply with a content warning, an attachment, an edit and an avatar,
    the owner's answer with a like, and a reader's comment with a website, the page shows
    each with author, handle, link, time, marker and counts, and is valid HTML5 (images
    hot-linked: tests/test_media.py shows them served by us)."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"min_form_seconds": 0},
                                       media={"proxy": False})
    post = await add_post_via_api(fc, summary="What the post is about")
    alice = remote.actor("alice")
    obj = note(alice, post["ap_id"], content="<p>Spoiler inside</p>", summary="plot twist",
               extra={"attachment": [{"type": "Document", "mediaType": "image/png",
                                      "url": "https://files.example/cat.png", "name": "A cat"}]})
    r = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(alice, "Create", obj))
    assert r.status == 202
    async with fc.rt.db.transaction() as tx:
        await tx.execute("UPDATE actors SET icon = 'https://files.example/alice.png'")
    edited = {**obj, "content": "<p>Spoiler inside, fixed</p>", "updated": "2099-01-01T00:00:00Z"}
    r = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(alice, "Update", edited))
    assert r.status == 202
    row = await fc.rt.db.read.fetchone("SELECT id FROM comments WHERE ap_id = ?", (obj["id"],))
    answer = await replies.owner_reply(fc.rt, row[0], "Thank you!")
    bob = remote.actor("bob")
    r = await deliver(fc.session, bob, f"{fc.url}/inbox", activity(bob, "Like", answer.ap_id))
    assert r.status == 202
    resp = await fc.session.post(f"{fc.url}/api/v1/comments", headers={"Origin": fc.url}, json={
        "post": str(post["id"]), "parent": str(answer.id), "name": "Carol",
        "website": "https://carol.example", "text": "Me too",
        "token": await form_token(fc, post["id"])})
    assert resp.status == 201
    text = await page(fc, post["slug"])
    assert_valid_html5(text)
    assert "What the post is about" in text and 'href="https://blog.example/a/"' in text
    assert '<h2 id="fc-count" class="fc-count">3 comments</h2>' in text
    # The fediverse reply: avatar, handle linking to the profile, original, time, CW, edit.
    assert ('<img class="fc-avatar" src="https://files.example/alice.png" alt="" width="40" '
            'height="40" loading="lazy" referrerpolicy="no-referrer">') in text
    handle = f'<a class="fc-handle" href="{remote.url}/@alice" rel="nofollow noopener">@alice@'
    assert handle in text
    assert f'<a href="{remote.url}/@alice/1" rel="nofollow noopener"><time datetime="' in text
    assert '<span class="fc-edited"' in text
    assert ('<details class="fc-cw"><summary>plot twist</summary><div class="fc-content">'
            '<p>Spoiler inside, fixed</p></div></details>') in text
    assert '<a href="https://files.example/cat.png" rel="nofollow noopener ugc">A cat</a>' in text
    # Nesting: reply > owner answer (with its like) > reader comment, in that order.
    reply_at = text.index(f'id="comment-{row[0]}"')
    answer_at = text.index(f'id="comment-{answer.id}"')
    carol_at = text.index(">Carol</a>")
    assert reply_at < answer_at < carol_at
    assert text[reply_at:answer_at].count('<ol class="fc-replies">') == 1
    assert '<span class="fc-badge">author</span>' in text
    assert '<span class="fc-likes">1 like</span>' in text
    assert ('<a class="fc-name" href="https://carol.example" rel="nofollow ugc noopener">'
            'Carol</a>') in text
    # Reply from your fediverse account, for the post and for each comment with an id.
    assert text.count('<form class="fc-interact-form" method="post" action="/interact">') == 4


async def test_security_headers_and_no_inline_code(instance: Instance) -> None:
    """Given the post page, it carries a strict CSP, nosniff and a referrer policy, and has no
    inline script, style attribute or event handler."""
    post = await add_post_via_api(instance)
    resp = await instance.get(f"/posts/{post['slug']}", accept=HTML)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    text = await resp.text()
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/embed.js" defer>']
    assert " style=" not in text and not re.search(r"\son\w+=", text)
    assert '<label for="fc-name">' in text and '<label for="fc-text">Comment</label>' in text
    assert '<main id="main">' in text and '<section class="fc-thread-section"' in text


async def test_form_without_javascript_shows_pending_notice(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given first-time moderation, posting the page's form answers with the page, a notice
    that the comment waits, and the comment shown to its author only."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc)
    form = {"token": await form_token(fc, post["id"]), "name": "Dora", "text": "Hello there",
            "email": "", "website": "", "homepage": "", "parent": ""}
    fc.clock.advance(seconds=30)
    resp = await fc.session.post(f"{fc.url}/posts/{post['slug']}/comments", data=form,
                                 headers={"Origin": fc.url})
    assert resp.status == 200
    text = await resp.text()
    assert_valid_html5(text)
    assert "Your comment is waiting for approval; only you can see it for now." in text
    assert '<li class="fc-comment fc-origin-local fc-pending"' in text and "Hello there" in text
    assert '<h2 id="fc-count" class="fc-count">No comments yet</h2>' in text
    other = await page(fc, post["slug"])
    assert "Hello there" not in other and "Dora" not in other


async def test_form_errors_are_shown_next_to_fields(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a form with an empty name and a bad website, the page answers 400 with each
    message next to its field, the typed text kept, and nothing stored."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc)
    form = {"token": await form_token(fc, post["id"]), "name": "", "website": "javascript:x",
            "text": "Keep <this> text", "homepage": ""}
    resp = await fc.session.post(f"{fc.url}/posts/{post['slug']}/comments", data=form,
                                 headers={"Origin": fc.url})
    assert resp.status == 400
    text = await resp.text()
    assert_valid_html5(text)
    assert re.search(r'aria-invalid="true" aria-describedby="fc-name-error">\s*<span '
                     r'class="fc-error" id="fc-name-error">please give a name</span>', text)
    assert '<span class="fc-error" id="fc-website-error">must be a web address' in text
    assert ">Keep &lt;this&gt; text</textarea>" in text
    assert (await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments"))[0] == 0


async def test_form_refusals_keep_the_page(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a published comment, the page shows it once, in the thread; given the honeypot
    filled, or a third comment within a minute, the page says so with the right status and
    stores nothing more."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    url = f"{fc.url}/posts/{post['slug']}/comments"

    async def send(text: str, **extra: str) -> tuple[int, str]:
        form = {"token": await form_token(fc, post["id"]), "name": "E", "text": text, **extra}
        fc.clock.advance(seconds=5)
        resp = await fc.session.post(url, data=form, headers={"Origin": fc.url})
        return resp.status, await resp.text()

    status, text = await send("bot", homepage="http://spam.example")
    assert status == 400 and "this looks automated and was not saved" in text
    status, text = await send("one")
    assert status == 200 and "Thank you! Your comment is published." in text
    assert text.count('class="fc-comment fc-origin-local"') == 1
    assert_valid_html5(text)
    assert (await send("two"))[0] == 200
    status, text = await send("three")
    assert status == 429 and "too many comments from your network" in text
    assert (await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments"))[0] == 2


async def test_reply_link_sets_the_parent(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given ?reply=ID of a shown comment, the form says whom it answers and carries the id;
    an unknown id is ignored."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    cid = await remote_reply(fc, remote.actor("erin"), post["ap_id"])
    text = await page(fc, post["slug"], f"?reply={cid}")
    assert f'Replying to <a href="#comment-{cid}">Erin</a>' in text
    assert f'<input type="hidden" name="parent" value="{cid}">' in text
    text = await page(fc, post["slug"], "?reply=999")
    assert "Replying to" not in text
    assert '<input type="hidden" name="parent" value="">' in text


async def test_pending_and_private_never_on_the_page(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a pending reply, a followers-only one and a direct one, the page shows none of
    them; approving the pending one shows it."""
    fc: Instance = await make_instance(moderation={"policy": "all"})
    post = await add_post_via_api(fc)
    frank = remote.actor("frank")
    pending = await remote_reply(fc, frank, post["ap_id"], content="<p>held back</p>")
    await remote_reply(fc, frank, post["ap_id"], content="<p>followers only</p>",
                       visibility="followers")
    await remote_reply(fc, frank, post["ap_id"], content="<p>just for you</p>",
                       visibility="direct", mention=fc.rt.urls.actor)
    await moderation.approve_comments(fc.rt, [pending])
    text = await page(fc, post["slug"])
    assert "held back" in text
    assert "followers only" not in text and "just for you" not in text
    assert "1 comment<" in text


async def test_page_policy_allows_images_from_elsewhere_only_when_hot_linked(
        make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given images served by us (the default), the page policy allows images from its own
    origin only, in production and in local development alike; with [media] proxy = false
    it allows https images, and plain http ones only in local development (private
    addresses allowed)."""
    csp = []
    for federation, proxy in (({"allow_private_addresses": False}, True), ({}, True),
                              ({"allow_private_addresses": False}, False), ({}, False)):
        inst: Instance = await make_instance(federation=federation, media={"proxy": proxy})
        post = await add_post_via_api(inst)
        resp = await inst.get(f"/posts/{post['slug']}", accept=HTML)
        csp.append(resp.headers["Content-Security-Policy"])
    assert "img-src 'self' data:;" in csp[0] and "img-src 'self' data:;" in csp[1]
    assert "img-src 'self' https: data:;" in csp[2]
    assert "img-src 'self' https: http: data:;" in csp[3]


async def test_page_etag_answers_304_until_the_thread_or_the_form_token_needs_a_new_page(
        make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given the post page read once, its weak ETag answers 304 with no body; ?reply= has
    its own; a new comment, or half the form's lifetime passing (the page's token must
    stay fresh), gives a new page; the answer to a submitted form carries no ETag."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       comments={"form_max_age_hours": 2})
    post = await add_post_via_api(fc)
    cid = await remote_reply(fc, remote.actor("gina"), post["ap_id"])
    # Tokens live 2 hours, so a page keeps its ETag for the hour it was issued in.
    fc.clock.advance(seconds=3600 - int(fc.clock().timestamp()) % 3600 + 1)
    url = f"/posts/{post['slug']}"
    first = await fc.get(url, accept=HTML)
    etag = first.headers["ETag"]
    assert first.status == 200 and etag.startswith('W/"') and etag.endswith('"')
    assert first.headers["Cache-Control"] == "no-cache"
    again = await fc.get(url, accept=HTML, headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b"" and again.headers["ETag"] == etag
    reply = await fc.get(f"{url}?reply={cid}", accept=HTML)
    assert reply.headers["ETag"] != etag
    assert (await fc.get(f"{url}?reply={cid}", accept=HTML,
                         headers={"If-None-Match": etag})).status == 200
    fc.clock.advance(minutes=59)
    assert (await fc.get(url, accept=HTML, headers={"If-None-Match": etag})).status == 304
    fc.clock.advance(minutes=2)
    later = await fc.get(url, accept=HTML, headers={"If-None-Match": etag})
    assert later.status == 200 and later.headers["ETag"] != etag
    token = re.search(r'name="token" value="([^"]+)"', await later.text())
    assert token is not None and int(token.group(1).split(".")[0]) == int(fc.clock().timestamp())
    etag = later.headers["ETag"]
    assert (await post_local(fc, post["id"], text="Some news")).status == 201
    changed = await fc.get(url, accept=HTML, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert "Some news" in await changed.text()
    form = {"token": await form_token(fc, post["id"]), "name": "Ivy", "text": "Hi there"}
    fc.clock.advance(seconds=30)
    answer = await fc.session.post(f"{fc.url}{url}/comments", data=form,
                                   headers={"Origin": fc.url, "If-None-Match": etag})
    assert answer.status == 200 and "ETag" not in answer.headers
