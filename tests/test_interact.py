"""'Reply from your fediverse account': WebFinger lookup, the subscribe template, no open
redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedcomments.services.interact import parse_handle, redirect_target
from tests.conftest import Instance
from tests.helpers.posts import add_post_via_api

SUBSCRIBE = "http://ostatus.org/schema/1.0/subscribe"


@dataclass
class WebFingerHost:
    """A fediverse instance on 127.0.0.1 answering WebFinger with a chosen document."""

    links: list[dict[str, Any]] = field(default_factory=list)
    server: TestServer | None = None
    asked: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    async def start(self) -> WebFingerHost:
        async def webfinger(request: web.Request) -> web.Response:
            self.asked.append(request.query.get("resource", ""))
            return web.json_response({"subject": request.query.get("resource"),
                                      "links": self.links},
                                     content_type="application/jrd+json")

        app = web.Application()
        app.router.add_get("/.well-known/webfinger", webfinger)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self


@pytest.fixture
async def wf() -> AsyncIterator[WebFingerHost]:
    host = await WebFingerHost().start()
    yield host
    assert host.server is not None
    await host.server.close()


async def interact_json(fc: Instance, acct: str, obj: str, origin: str | None = "") -> Any:
    headers = {"Origin": origin or fc.url} if origin is not None else {}
    return await fc.session.post(f"{fc.url}/api/v1/interact", json={"acct": acct, "object": obj},
                                 headers=headers)


async def test_redirects_to_the_readers_instance(instance: Instance, wf: WebFingerHost) -> None:
    """Given a handle whose WebFinger has a subscribe template, the answer is that template
    with our post's id, and the lookup asked for exactly that account."""
    post = await add_post_via_api(instance)
    wf.links = [{"rel": "self", "href": "x"},
                {"rel": SUBSCRIBE, "template": f"http://{wf.host}/authorize_interaction?uri={{uri}}"}]
    resp = await interact_json(instance, f"@Alice@{wf.host}", post["ap_id"])
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["redirect"] == (f"http://{wf.host}/authorize_interaction?uri="
                                + quote(post["ap_id"], safe=""))
    assert data["handle"] == f"@Alice@{wf.host}" and data["problem"] is None
    assert wf.asked == [f"acct:Alice@{wf.host}"]


async def test_html_form_answers_303(instance: Instance, wf: WebFingerHost) -> None:
    """Given the no-JavaScript form on our page, the answer is a 303 to the instance."""
    post = await add_post_via_api(instance)
    wf.links = [{"rel": SUBSCRIBE, "template": f"http://{wf.host}/share?uri={{uri}}"}]
    resp = await instance.session.post(
        f"{instance.url}/interact", data={"acct": f"bob@{wf.host}", "object": post["ap_id"]},
        headers={"Origin": instance.url}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith(f"http://{wf.host}/share?uri=http%3A%2F%2F")


async def test_missing_or_foreign_template_shows_the_url(instance: Instance,
                                                         wf: WebFingerHost) -> None:
    """Given no template, or one pointing at another host or a javascript: URL, there is no
    redirect: the reader gets the object URL to paste, with the reason."""
    post = await add_post_via_api(instance)
    for links in ([], [{"rel": SUBSCRIBE, "template": "http://evil.example/go?u={uri}"}],
                  [{"rel": SUBSCRIBE, "template": "javascript:alert('{uri}')"}]):
        wf.links = links
        data = await (await interact_json(instance, f"a@{wf.host}", post["ap_id"])).json()
        assert data["redirect"] is None and data["object"] == post["ap_id"]
        assert data["problem"]
    page = await instance.session.post(
        f"{instance.url}/interact", data={"acct": f"a@{wf.host}", "object": post["ap_id"]},
        headers={"Origin": instance.url}, allow_redirects=False)
    assert page.status == 200
    text = await page.text()
    assert "will not open" in text and f'value="{post["ap_id"]}"' in text


async def test_unreachable_instance_and_bad_handles(instance: Instance) -> None:
    """Given an instance that does not answer, the reader is told and shown the URL; a
    malformed handle is a 400 on the acct field."""
    post = await add_post_via_api(instance)
    data = await (await interact_json(instance, "a@127.0.0.1:9", post["ap_id"])).json()
    assert data["redirect"] is None and "could not look up" in data["problem"]
    for bad in ("", "alice", "@alice", "a@b@c", "a@host/path", "a@host:99999"):
        resp = await interact_json(instance, bad, post["ap_id"])
        assert resp.status == 400, bad
        assert (await resp.json())["field"] == "acct"


async def test_only_our_public_objects(instance: Instance, wf: WebFingerHost) -> None:
    """Given an object that is not ours, nothing is looked up (404): we never redirect for
    arbitrary URLs."""
    wf.links = [{"rel": SUBSCRIBE, "template": f"http://{wf.host}/a?uri={{uri}}"}]
    resp = await interact_json(instance, f"a@{wf.host}", "https://evil.example/phish")
    assert resp.status == 404
    assert wf.asked == []


async def test_no_redirect_without_a_same_site_post(instance: Instance,
                                                    wf: WebFingerHost) -> None:
    """Given a link or a foreign page, GET never redirects and a POST without our Origin is
    refused: nobody can make our server bounce a visitor elsewhere."""
    post = await add_post_via_api(instance)
    wf.links = [{"rel": SUBSCRIBE, "template": f"http://{wf.host}/a?uri={{uri}}"}]
    resp = await instance.session.get(
        f"{instance.url}/interact", params={"object": post["ap_id"], "acct": f"a@{wf.host}"},
        headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.status == 200 and resp.content_type == "text/html"
    assert 'name="acct"' in await resp.text()
    for origin in (None, "https://evil.example"):
        resp = await instance.session.post(
            f"{instance.url}/interact", data={"acct": f"a@{wf.host}", "object": post["ap_id"]},
            headers={"Origin": origin} if origin else {}, allow_redirects=False)
        assert resp.status == 403
        assert (await interact_json(instance, f"a@{wf.host}", post["ap_id"], origin)).status == 403
    assert wf.asked == []


def test_redirect_target_rules() -> None:
    """Only https (http only when private addresses are allowed), the named instance or the
    host that answered WebFinger (or a subdomain), no credentials, one {uri}."""
    obj = "https://comments.example/posts/a"
    enc = quote(obj, safe="")

    def target(template: str, allow_http: bool = False) -> str | None:
        return redirect_target(template, obj, acct_host="mastodon.example",
                               jrd_host="mastodon.example", allow_http=allow_http)

    assert target("https://mastodon.example/authorize_interaction?uri={uri}") == (
        f"https://mastodon.example/authorize_interaction?uri={enc}")
    assert target("https://social.mastodon.example/x?uri={uri}") is not None
    for bad in ("http://mastodon.example/x?uri={uri}", "https://evil.example/x?uri={uri}",
                "https://mastodon.example.evil.example/?uri={uri}",
                "https://user:pw@mastodon.example/?uri={uri}", "https://mastodon.example/",
                "https://mastodon.example/?a={uri}&b={uri}", "//mastodon.example/?uri={uri}",
                "https://mastodon.example/?uri={uri}\n", "javascript:alert(1)//{uri}"):
        assert target(bad) is None, bad
    assert target("http://mastodon.example/x?uri={uri}", allow_http=True) is not None
    delegated = redirect_target("https://social.other.example/x?uri={uri}", obj,
                                acct_host="other.example", jrd_host="social.other.example",
                                allow_http=False)
    assert delegated is not None


def test_parse_handle() -> None:
    """Handles with or without the leading @, Unicode hosts in IDNA form, ports kept."""
    h = parse_handle(" @Alice@Bücher.Example ")
    assert (h.user, h.host, h.hostname, str(h)) == (
        "Alice", "xn--bcher-kva.example", "xn--bcher-kva.example", "@Alice@xn--bcher-kva.example")
    assert parse_handle("bob@127.0.0.1:8080").host == "127.0.0.1:8080"
