"""The admin API's block endpoints (import, export, actors) and its OpenAPI description."""

from __future__ import annotations

from fedcomments.store import comments as comment_store
from fedcomments.web import admin_api
from tests.conftest import Instance
from tests.helpers.admin import reply, start_peer
from tests.helpers.posts import add_post_via_api

CSV = ("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
       "localhost,suspend,false,false,Harassment,false\n"
       "quiet.example,silence,false,false,,false\n"
       "bad..example,suspend,false,false,,false\n")


async def test_admin_api_imports_and_exports_mastodon_blocklists(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a commenting peer, when a Mastodon CSV naming its domain is imported through
    the API, then the report is exact, its comment is gone and it is refused at once; the
    export gives the block back and a dry run changes nothing."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        post = await add_post_via_api(fc, "hello")
        status, first = await reply(fc, alice, post["ap_id"])
        assert status == 202
        headers = {"Content-Type": "text/csv"}

        resp = await fc.admin("POST", "/api/v1/admin/domains/import?dry_run=true", data=CSV,
                              headers=headers)
        assert (resp.status, (await resp.json())["added"]) == (200, [
            {"line": 2, "domain": "localhost"}])
        assert await comment_store.by_ap_id(fc.rt.db.read, first["id"]) is not None

        resp = await fc.admin("POST", "/api/v1/admin/domains/import", data=CSV, headers=headers)
        report = await resp.json()
        assert (resp.status, report["added"], report["skipped"], report["removed"]) == (200, [
            {"line": 2, "domain": "localhost"}], [
            {"line": 3, "text": "quiet.example",
             "reason": "severity silence: only suspend rows become blocks"}], {
            "comments": 1, "reactions": 0, "followers": 0, "deliveries": 0})
        assert [n["line"] for n in report["invalid"]] == [4]
        assert await comment_store.by_ap_id(fc.rt.db.read, first["id"]) is None
        status, _ = await reply(fc, alice, post["ap_id"], "<p>Hello?</p>")
        assert status == 403

        resp = await fc.admin("GET", "/api/v1/admin/domains/export")
        assert (resp.status, resp.content_type, await resp.text()) == (
            200, "text/csv", "#domain,#severity,#reject_media,#reject_reports,#public_comment,"
            "#obfuscate\nlocalhost,suspend,false,false,Harassment,false\n")
        resp = await fc.admin("GET", "/api/v1/admin/domains/export?format=plain")
        assert (resp.content_type, await resp.text()) == ("text/plain", "localhost\n")
        resp = await fc.admin("GET", "/api/v1/admin/domains/export?format=xml")
        assert (resp.status, (await resp.json())["field"]) == (400, "format")
        resp = await fc.admin("POST", "/api/v1/admin/domains/import", json={"csv": CSV})
        assert resp.status == 415
        resp = await fc.admin("POST", "/api/v1/admin/domains/import?dry_run=maybe", data=CSV,
                              headers=headers)
        assert (resp.status, (await resp.json())["field"]) == (400, "dry_run")
    finally:
        await peer.close()


async def test_admin_api_blocks_actors_by_handle_and_url(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given a peer answering WebFinger, the API blocks an actor by handle, lists it,
    refuses a bad body, and unblocks it by URL."""
    fc: Instance = await make_instance()
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        peer.webfinger(alice)
        handle = f"@alice@localhost:{peer.server.port}"
        resp = await fc.admin("POST", "/api/v1/admin/actors",
                              json={"actor": handle, "reason": "spam"})
        assert (resp.status, await resp.json()) == (201, {
            "actor": alice.id, "created": True, "covered_by": None, "keep_content": False,
            "removed": {"comments": 0, "reactions": 0, "followers": 0, "deliveries": 0}})
        resp = await fc.admin("GET", "/api/v1/admin/actors")
        [entry] = (await resp.json())["actors"]
        assert (entry["actor"], entry["reason"]) == (alice.id, "spam")
        resp = await fc.admin("POST", "/api/v1/admin/actors", json={"actor": handle, "x": 1})
        assert (resp.status, (await resp.json())["field"]) == (400, "x")
        resp = await fc.admin("POST", "/api/v1/admin/actors", json={"actor": "nobody"})
        assert (resp.status, (await resp.json())["field"]) == (400, "actor")
        resp = await fc.admin("DELETE", "/api/v1/admin/actors", params={"actor": alice.id})
        assert (resp.status, await resp.json()) == (200, {"actor": alice.id, "unblocked": True})
        assert not fc.rt.blocklist.url_blocked(alice.id)
        resp = await fc.admin("DELETE", "/api/v1/admin/actors")
        assert (resp.status, (await resp.json())["field"]) == (400, "actor")
    finally:
        await peer.close()


async def test_every_admin_route_is_documented_and_needs_the_token(instance: Instance) -> None:
    """Given the admin routes of blocks and moderation, each is in the OpenAPI document
    with its method, and each answers 401 without the bearer token."""
    resp = await instance.get("/api/v1/openapi.json", accept="application/json")
    paths = (await resp.json())["paths"]
    routes = [(r.method, r.resource.canonical) for r in instance.server.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith(admin_api.PREFIX)
              and r.handler.__module__ == admin_api.__name__ and r.method != "HEAD"]
    assert len(routes) == 18
    for method, path in routes:
        assert method.lower() in paths[path], (method, path)
        url = instance.url + path.replace("{id}", "1").replace("{domain}", "x.example")
        answer = await instance.session.request(method, url)
        assert answer.status == 401, (method, path)
