"""Stored XSS through remote content, remote names and URLs, reader names and websites never
becomes markup: checked structurally on the HTML page and in the JSON the widget reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import html5lib

from fedcomments.ap.sanitize import plain_text
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, FakeInstance, activity, deliver, note
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import flatten, form_token, thread

PAYLOAD_HTML = (
    '<p>hi<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
    '<a href="javascript:window.__xss=1">click</a><a href="https://ok.example" '
    'onclick="window.__xss=1" style="color:red">ok</a>'
    '<iframe srcdoc="&lt;script&gt;parent.__xss=1&lt;/script&gt;"></iframe>'
    '<svg onload="window.__xss=1"></svg><math><mtext><table><mglyph><style>'
    '<img src=x onerror=window.__xss=1></style></mglyph></table></mtext></math></p>'
)
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">"\'><script>window.__xss=1</script>'


@dataclass
class HostileActor(FakeActor):
    """An actor whose own document carries script in its name and javascript: URLs."""

    def document(self) -> dict[str, Any]:
        doc = super().document()
        doc.update(name=HOSTILE_NAME, url="javascript:window.__xss=1",
                   icon={"type": "Image", "url": "javascript:window.__xss=1"})
        return doc


async def seed_hostile_thread(fc: Instance, remote: FakeInstance) -> dict[str, Any]:
    """A post with a hostile fediverse reply and a hostile reader comment under it."""
    post = await add_post_via_api(fc)
    plain = remote.actor("mallory")
    hostile = HostileActor(remote, "mallory", plain.keypair)
    remote.actors["mallory"] = hostile
    obj = note(hostile, post["ap_id"], content=PAYLOAD_HTML,
               summary="<script>window.__xss=1</script>CW",
               extra={"url": "javascript:window.__xss=1", "attachment": [
                   {"type": "Document", "url": "javascript:window.__xss=1",
                    "name": "<img src=x onerror=window.__xss=1>"},
                   {"type": "Document", "url": "https://files.example/a.png",
                    "name": '"><script>window.__xss=1</script>'}]})
    r = await deliver(fc.session, hostile, f"{fc.url}/inbox", activity(hostile, "Create", obj))
    assert r.status == 202, await r.text()
    parent = (await fc.rt.db.read.fetchone("SELECT id FROM comments"))[0]
    token = await form_token(fc, post["id"])
    fc.clock.advance(seconds=10)
    resp = await fc.session.post(f"{fc.url}/api/v1/comments", headers={"Origin": fc.url}, json={
        "post": str(post["id"]), "parent": str(parent), "token": token,
        "name": "<script>window.__xss=1</script>Eve",
        "website": "https://eve.example/'onmouseover='window.__xss=1",
        "text": '<img src=x onerror="window.__xss=1"> javascript:window.__xss=1'})
    assert resp.status == 201, await resp.text()
    for website in ("javascript:window.__xss=1", 'https://eve.example/"onclick="x'):
        refused = await fc.session.post(
            f"{fc.url}/api/v1/comments", headers={"Origin": fc.url}, json={
                "post": str(post["id"]), "token": token, "name": "E2", "website": website,
                "text": "t"})
        assert refused.status == 400
        assert list((await refused.json())["errors"]) == ["website"]
    return post


def elements(root: Element) -> Iterator[Element]:
    yield from root.iter()


def assert_inert(fragment_root: Element, *, allowed_scripts: tuple[str, ...] = ()) -> None:
    """No script but ours, no event handler, no style, no javascript:/data: URL, no frames."""
    for node in elements(fragment_root):
        tag = str(node.tag).rsplit("}", 1)[-1].lower()
        if tag == "script":
            assert node.get("src") in allowed_scripts and not (node.text or "").strip(), node.attrib
        assert tag not in ("iframe", "object", "embed", "svg", "math", "style"), tag
        if tag == "link" and node.get("rel") == "icon" and node.get("href") == "data:,":
            continue  # our own empty favicon, which spares browsers a request
        for name, value in node.attrib.items():
            assert not name.lower().startswith("on"), (tag, name, value)
            assert name.lower() != "style", (tag, name)
            if name.lower() in ("href", "src", "action", "formaction", "srcdoc"):
                assert value.strip().lower().startswith(("https:", "http:", "/", "#", "?")), (
                    tag, name, value)


async def test_page_renders_hostile_input_inert(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given hostile remote content, names, URLs and reader fields, the HTML page contains no
    executable markup: the attempts appear as text only."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await seed_hostile_thread(fc, remote)
    resp = await fc.get(f"/posts/{post['slug']}", accept="text/html")
    text = await resp.text()
    doc = html5lib.parse(text, namespaceHTMLElements=False)
    assert_inert(doc, allowed_scripts=("/embed.js",))
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;Eve" in text
    assert "&lt;img src=x onerror=" in text
    assert 'href="https://eve.example/&#39;onmouseover=&#39;window.__xss=1"' in text


async def test_json_is_inert_for_the_widget(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given the same thread, every HTML field of the JSON is inert and every URL field is
    http(s) or null; names are plain strings (the widget sets them as text)."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await seed_hostile_thread(fc, remote)
    data = await thread(fc, id=str(post["id"]))
    comments = flatten(data["comments"])
    assert len(comments) == 2
    for c in comments:
        assert_inert(html5lib.parseFragment(c["content"], namespaceHTMLElements=False))
        urls = [c["url"], c["author"]["url"], c["author"]["avatar"], c["author"]["website"],
                *[a["url"] for a in c["attachments"]]]
        for url in urls:
            assert url is None or url.startswith(("https://", "http://")), url
    mallory, eve = comments
    # Remote names are stored as plain text; whatever is left is shown as text, never parsed.
    assert mallory["author"]["name"] == plain_text(HOSTILE_NAME) == "\"'>"
    assert mallory["author"]["avatar"] is None
    assert [a["url"] for a in mallory["attachments"]] == ["https://files.example/a.png"]
    assert mallory["url"] == mallory["ap_id"]
    assert eve["author"]["name"] == "<script>window.__xss=1</script>Eve"
    assert eve["content"].startswith("<p>&lt;img src=x onerror=")
