"""Discovery and the blog actor: WebFinger, host-meta, NodeInfo, actor JSON and HTML."""

from __future__ import annotations

from fedcomments.runtime import open_runtime
from tests.conftest import Instance


async def test_webfinger_acct_and_actor_url(instance: Instance) -> None:
    """Given our acct: URI (any case) or actor URL, WebFinger answers JRD with CORS."""
    host = instance.url.removeprefix("http://")
    resources = (f"acct:blog@{host}", f"acct:BLOG@{host.upper()}", f"{instance.url}/users/blog")
    for resource in resources:
        resp = await instance.get(f"/.well-known/webfinger?resource={resource}", accept="*/*")
        assert resp.status == 200, resource
        assert resp.content_type == "application/jrd+json"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        data = await resp.json(content_type=None)
        assert data["subject"] == f"acct:blog@{host}"
        self_link = next(link for link in data["links"] if link["rel"] == "self")
        assert self_link == {"rel": "self", "type": "application/activity+json",
                             "href": f"{instance.url}/users/blog"}


async def test_webfinger_unknown_and_missing(instance: Instance) -> None:
    """Given another user or no resource, WebFinger answers 404 / 400."""
    host = instance.url.removeprefix("http://")
    resp = await instance.get(f"/.well-known/webfinger?resource=acct:other@{host}")
    assert resp.status == 404
    resp = await instance.get("/.well-known/webfinger?resource=acct:blog@elsewhere.example")
    assert resp.status == 404
    resp = await instance.get("/.well-known/webfinger")
    assert resp.status == 400


async def test_host_meta(instance: Instance) -> None:
    """host-meta points at our WebFinger template."""
    resp = await instance.get("/.well-known/host-meta", accept="*/*")
    assert resp.status == 200
    assert resp.content_type == "application/xrd+xml"
    text = await resp.text()
    assert f'template="{instance.url}/.well-known/webfinger?resource={{uri}}"' in text


async def test_nodeinfo(instance: Instance) -> None:
    """NodeInfo 2.1 names the software, the protocol and usage counts."""
    resp = await instance.get("/.well-known/nodeinfo", accept="application/json")
    links = (await resp.json())["links"]
    assert links == [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                      "href": f"{instance.url}/nodeinfo/2.1"}]
    resp = await instance.get("/nodeinfo/2.1", accept="application/json")
    assert resp.status == 200
    assert "profile=" in resp.headers["Content-Type"]
    data = await resp.json(content_type=None)
    assert data["version"] == "2.1"
    assert data["software"]["name"] == "fedcomments"
    assert data["protocols"] == ["activitypub"]
    assert data["usage"]["users"]["total"] == 1
    assert data["usage"]["localPosts"] == 0


async def test_actor_document(instance: Instance) -> None:
    """The actor is a Person with every endpoint and a usable public key, never the private."""
    resp = await instance.get("/users/blog")
    assert resp.status == 200
    assert resp.content_type == "application/activity+json"
    assert resp.headers["Vary"] == "Accept"
    raw = await resp.text()
    assert "PRIVATE KEY" not in raw
    doc = await resp.json(content_type=None)
    base = f"{instance.url}/users/blog"
    assert doc["id"] == base and doc["type"] == "Person"
    assert doc["preferredUsername"] == "blog" and doc["name"] == "Test Blog"
    assert doc["summary"] == "<p>A blog about tests.</p>"
    assert doc["url"] == "https://blog.example/"
    assert doc["inbox"] == f"{base}/inbox" and doc["outbox"] == f"{base}/outbox"
    assert doc["followers"] == f"{base}/followers" and doc["following"] == f"{base}/following"
    assert doc["endpoints"] == {"sharedInbox": f"{instance.url}/inbox"}
    assert doc["publicKey"]["id"] == f"{base}#main-key"
    assert doc["publicKey"]["owner"] == base
    assert doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert doc["manuallyApprovesFollowers"] is False
    assert doc["discoverable"] is True and doc["indexable"] is True
    assert doc["published"].endswith("Z")
    assert "icon" not in doc


async def test_actor_type_and_icon_from_config(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given actor.type = Service and an icon, the actor says so."""
    inst = await make_instance(actor={"type": "Service", "icon": "https://blog.example/a.png"})
    doc = await (await inst.get("/users/blog")).json(content_type=None)
    assert doc["type"] == "Service"
    assert doc["icon"] == {"type": "Image", "url": "https://blog.example/a.png"}


async def test_actor_html_for_browsers(instance: Instance) -> None:
    """Given a browser Accept header, the actor URL answers an HTML profile page."""
    resp = await instance.get("/users/blog", accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Vary"] == "Accept"
    assert "Content-Security-Policy" in resp.headers
    text = await resp.text()
    assert "<h1>Test Blog</h1>" in text
    assert "@blog@127.0.0.1:" in text


async def test_unknown_actor_404(instance: Instance) -> None:
    """Another username is not found."""
    assert (await instance.get("/users/nobody")).status == 404


async def test_keys_generated_once_and_private(instance: Instance) -> None:
    """Given a restart, the same key pair is loaded; the database file is owner-only."""
    first = instance.rt.keys
    async with open_runtime(instance.settings) as rt:
        assert rt.keys == first
    import os

    mode = os.stat(instance.settings.storage.database).st_mode & 0o777
    assert mode == 0o600
