"""Hostile inbox requests: each is refused with the right status, stores nothing, and
fetches nothing it must not (issue 3: "How it will be checked")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import InstanceFactory
from tests.helpers.fediverse import (
    PUBLIC,
    SIGNERS,
    FakeInstance,
    Signer,
    activity,
    deliver,
    note,
    our_cavage,
    our_rfc9421,
)
from tests.helpers.inbox import Blog, block_domain, start_blog_with_post, stored_state
from tests.helpers.independent import rfc9421_sign

#: Tables that must stay untouched even when the sender authenticated (its actor is cached).
CONTENT_TABLES = ("comments", "tombstones", "reactions", "followers", "processed_activities",
                  "deliveries", "reports")


@pytest.fixture
def remote(remotes: list[FakeInstance]) -> FakeInstance:
    return remotes[0]


def content(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: state[table] for table in CONTENT_TABLES}


# --- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
async def test_tampered_body(blog: Blog, remote: FakeInstance, signer: Signer) -> None:
    """Given a correctly signed reply, when one byte of the body changes on the way, then
    401 (digest mismatch), nothing stored and no key fetched."""
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    create = activity(alice, "Create", note(alice, blog.post.ap_id, content="<p>honest</p>"))
    r = await blog.send(alice, create, signer=signer,
                        tamper=lambda b: b.replace(b"honest", b"forged"))
    assert r.status == 401
    assert "digest" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("signer", [our_cavage, our_rfc9421], ids=["cavage", "rfc9421"])
async def test_tampered_body_with_recomputed_digest(blog: Blog, remote: FakeInstance,
                                                    signer: Signer) -> None:
    """Given a signed reply whose body is replaced along with a freshly computed digest, when
    it arrives, then the signature fails (401) and nothing is stored, not even the actor
    whose key was fetched to check it."""
    alice = remote.actor("alice")
    honest = activity(alice, "Create", note(alice, blog.post.ap_id))
    forged = json.dumps({**honest, "object": {**honest["object"], "content": "forged"}}).encode()
    headers = {"Content-Type": "application/activity+json"}
    signed = signer("POST", blog.shared_inbox, dict(headers), json.dumps(honest).encode(),
                    alice.key_id, alice.keypair.private_pem, blog.instance.clock())
    digest = signer("POST", blog.shared_inbox, dict(headers), forged, alice.key_id,
                    alice.keypair.private_pem, blog.instance.clock())
    for name in ("Digest", "Content-Digest"):
        if name in digest:
            signed[name] = digest[name]
    before = await stored_state(blog.rt)
    r = await blog.instance.session.post(blog.shared_inbox, data=forged,
                                         headers={**headers, **signed})
    assert r.status == 401
    assert "invalid_signature" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == ["/users/alice"]


@pytest.mark.parametrize("minutes", [66, -61], ids=["stale-66min", "future-61min"])
@pytest.mark.parametrize("signer", [our_cavage, rfc9421_sign], ids=["cavage", "rfc9421"])
async def test_date_out_of_window(blog: Blog, remote: FakeInstance, minutes: int,
                                  signer: Signer) -> None:
    """Given a request signed now, when our clock is 66 min later (stale) or 61 min earlier
    (from the future), then 401, nothing stored and no key fetched."""
    alice = remote.actor("alice")
    signed_at = blog.instance.clock()
    blog.instance.clock.advance(minutes=minutes)
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), now=signed_at,
                        signer=signer)
    assert r.status == 401
    assert "date_out_of_window" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


async def test_missing_signature(blog: Blog, remote: FakeInstance) -> None:
    """Given an unsigned reply, when it is POSTed, then 401, nothing stored, nothing fetched."""
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.instance.session.post(
        blog.shared_inbox, json=activity(alice, "Create", note(alice, blog.post.ap_id)),
        headers={"Content-Type": "application/activity+json"})
    assert r.status == 401
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
async def test_key_actor_mismatch(blog: Blog, remote: FakeInstance, signer: Signer) -> None:
    """Given alice's valid key, when it signs an activity whose actor is bob, then 401 and
    nothing stored (not even alice, whose key was fetched to check the signature)."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    before = await stored_state(blog.rt)
    create = activity(bob, "Create", note(bob, blog.post.ap_id))
    r = await deliver(blog.instance.session, alice, blog.shared_inbox, create, signer=signer)
    assert r.status == 401
    assert "not to actor" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == ["/users/alice"]


async def test_actor_served_with_another_id(blog: Blog, remotes: list[FakeInstance]) -> None:
    """Given a server whose /users/eve answers with the id of an actor elsewhere, when eve's
    request arrives, then the key is refused (401) and nothing stored."""
    remote, other = remotes
    eve = remote.actor("eve")
    eve.served_id = f"{other.url}/users/eve"
    before = await stored_state(blog.rt)
    r = await blog.send(eve, activity(eve, "Follow", blog.rt.urls.actor))
    assert r.status == 401
    assert await stored_state(blog.rt) == before
    assert other.hits == []


async def test_gotosocial_stub_with_foreign_owner(blog: Blog, remotes: list[FakeInstance]
                                                  ) -> None:
    """Given a key stub that names an owner on another server, when it signs a request, then
    401 without fetching that other server, and nothing stored."""
    remote, other = remotes
    bob = remote.actor("bob", key_style="gotosocial")
    bob.served_id = f"{other.url}/users/bob"
    before = await stored_state(blog.rt)
    r = await blog.send(bob, activity(bob, "Follow", blog.rt.urls.actor))
    assert r.status == 401
    assert await stored_state(blog.rt) == before
    assert other.hits == []


async def test_own_key_id_refused_without_fetch(blog: Blog, remote: FakeInstance) -> None:
    """Given a request whose keyId is our own blog key, when it arrives, then 401 at once:
    we never fetch ourselves to check a stranger's claim."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                        key_id=blog.rt.urls.key_id)
    assert r.status == 401
    assert await blog.rows("SELECT count(*) FROM actors") == [(0,)]


# --- objects from their own origin --------------------------------------------------------------


async def test_cross_origin_object(blog: Blog, remotes: list[FakeInstance]) -> None:
    """Given alice on one server, when she Creates a note whose id is on another server, then
    401, nothing stored, and the other server is never asked for it."""
    remote, other = remotes
    alice = remote.actor("alice")
    other.actor("alice")
    forged = note(alice, blog.post.ap_id)
    forged["id"] = other.publish({**forged, "id": other.new_id()})["id"]
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", forged))
    assert r.status == 401
    assert content(await stored_state(blog.rt)) == content(before)
    assert other.hits == []


async def test_cross_origin_object_by_reference(blog: Blog, remotes: list[FakeInstance]) -> None:
    """Given a Create whose object is only an id on another server, when it arrives, then 401
    without fetching that id."""
    remote, other = remotes
    alice = remote.actor("alice")
    elsewhere = other.publish(note(other.actor("bob"), blog.post.ap_id))
    r = await blog.send(alice, activity(alice, "Create", elsewhere["id"]))
    assert r.status == 401
    assert await blog.comments() == []
    assert other.hits == []


async def test_object_attributed_to_someone_else(blog: Blog, remote: FakeInstance) -> None:
    """Given alice, when she Creates a note attributed to bob (same server), then 401,
    nothing stored and bob is not fetched."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    forged = note(alice, blog.post.ap_id, extra={"attributedTo": bob.id})
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", forged))
    assert r.status == 401
    assert content(await stored_state(blog.rt)) == content(before)
    assert "/users/bob" not in remote.hits


async def test_update_of_someone_elses_note(blog: Blog, remote: FakeInstance) -> None:
    """Given bob's comment, when alice sends an Update of it (attributed to bob, or to
    herself), then it is refused or ignored and the comment is unchanged."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    reply = note(bob, blog.post.ap_id, content="<p>bob</p>")
    assert (await blog.send(bob, activity(bob, "Create", reply))).status == 202
    r = await blog.send(alice, activity(alice, "Update", {**reply, "content": "x"}))
    assert r.status == 401
    claimed = {**reply, "content": "<p>alice</p>", "attributedTo": alice.id,
               "updated": "2099-01-01T00:00:00Z"}
    r = await blog.send(alice, activity(alice, "Update", claimed))
    assert r.status == 202
    assert (await r.json())["outcome"] == "unknown or not theirs"
    assert [c["content"] for c in await blog.comments()] == ["<p>bob</p>"]


async def test_delete_of_someone_elses_note(blog: Blog, remote: FakeInstance) -> None:
    """Given bob's comment, when alice sends a Delete of it, then it stays."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    reply = note(bob, blog.post.ap_id)
    assert (await blog.send(bob, activity(bob, "Create", reply))).status == 202
    r = await blog.send(alice, activity(alice, "Delete", reply["id"]))
    assert r.status == 202
    assert (await r.json())["outcome"] == "not theirs"
    assert len(await blog.comments()) == 1


# --- blocks ------------------------------------------------------------------------------------


async def test_blocked_domain(blog: Blog, remote: FakeInstance) -> None:
    """Given the sender's domain is blocked, when it sends a reply, then 403, nothing stored
    and its server is never contacted."""
    await block_domain(blog.rt, "127.0.0.1")
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)))
    assert r.status == 403
    assert await stored_state(blog.rt) == before
    assert remote.requests == []


async def test_blocked_subdomain_key(blog: Blog, remote: FakeInstance) -> None:
    """Given example.social is blocked, when a request is signed with a keyId on
    eu.mastodon.example.social, then 403 before anything is parsed or fetched."""
    await block_domain(blog.rt, "example.social")
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, {}, body=b"not even json",
                        key_id="https://eu.mastodon.example.social/users/a#main-key")
    assert r.status == 403
    assert await stored_state(blog.rt) == before


async def test_blocked_subdomain_actor(blog: Blog, remote: FakeInstance) -> None:
    """Given example.social is blocked, when a reachable key signs an activity whose actor is
    on a.example.social, then 403 before the key is fetched."""
    await block_domain(blog.rt, "example.social")
    alice = remote.actor("alice")
    create = {**activity(alice, "Create", note(alice, blog.post.ap_id)),
              "actor": "https://a.example.social/users/alice",
              "id": "https://a.example.social/activities/1"}
    before = await stored_state(blog.rt)
    r = await blog.send(alice, create)
    assert r.status == 403
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("where", ["inReplyTo", "like", "announce-of-blocked-author"])
async def test_reference_to_blocked_domain_dropped(blog: Blog, remote: FakeInstance,
                                                   where: str) -> None:
    """Given blocked.example, when a trusted actor sends an activity that merely references
    it (a reply to a note there, a Like of it, an Announce of a note attributed there), then
    202 and nothing is stored or fetched from there."""
    await block_domain(blog.rt, "blocked.example")
    alice = remote.actor("alice")
    elsewhere = "https://blocked.example/notes/1"
    doc = {
        "inReplyTo": activity(alice, "Create", note(alice, elsewhere)),
        "like": activity(alice, "Like", elsewhere),
        "announce-of-blocked-author": activity(alice, "Announce", {
            "id": elsewhere, "type": "Note", "attributedTo": "https://blocked.example/u/x",
            "content": "x", "to": [PUBLIC]}),
    }[where]
    before = await stored_state(blog.rt)
    r = await blog.send(alice, doc)
    assert r.status == 202
    assert (await r.json())["outcome"] == "references a blocked origin"
    assert content(await stored_state(blog.rt)) == content(before)


async def test_private_address_key_refused_without_connection(make_instance: InstanceFactory,
                                                              remote: FakeInstance) -> None:
    """Given allow_private_addresses = false, when a request's keyId is on 127.0.0.1, then
    401, nothing stored, and no connection reaches that address."""
    blog = await start_blog_with_post(make_instance, federation={"allow_private_addresses": False})
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)))
    assert r.status == 401
    assert "forbidden" in (await r.json())["error"] or "refused" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.requests == []


# --- bodies ------------------------------------------------------------------------------------


async def test_remote_context_costs_no_request(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply whose @context names a URL on the sender's server (which would redefine
    `content`), when it arrives, then that URL is never fetched, the reply is read with the
    ActivityStreams meaning of its terms, and it is stored."""
    alice = remote.actor("alice")
    ctx = remote.serve("/ctx.jsonld", {"@context": {"content": "http://evil.example/#c"}},
                       "application/ld+json")
    create = activity(alice, "Create", note(alice, blog.post.ap_id, content="<p>hi</p>"))
    create["@context"] = ["https://www.w3.org/ns/activitystreams", ctx]
    r = await blog.send(alice, create)
    assert r.status == 202, await r.text()
    assert remote.count("/ctx.jsonld") == 0
    assert [c["content"] for c in await blog.comments()] == ["<p>hi</p>"]


async def test_oversized_body(blog: Blog, remote: FakeInstance) -> None:
    """Given a body over 1 MiB, when it is POSTed with a Content-Length, then 413 before
    anything is read or fetched, and nothing stored."""
    alice = remote.actor("alice")
    big = note(alice, blog.post.ap_id, content="<p>" + "a" * (1 << 20) + "</p>")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", big))
    assert r.status == 413
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


async def test_oversized_chunked_body(blog: Blog, remote: FakeInstance) -> None:
    """Given a body over 1 MiB sent chunked (no Content-Length), when it is POSTed, then
    413 and nothing stored."""
    alice = remote.actor("alice")
    raw = json.dumps(activity(alice, "Create", note(
        alice, blog.post.ap_id, content="a" * (1 << 20)))).encode()
    headers = {"Content-Type": "application/activity+json"}
    signed = our_cavage("POST", blog.shared_inbox, dict(headers), raw, alice.key_id,
                        alice.keypair.private_pem, blog.instance.clock())

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 65536):
            yield raw[i:i + 65536]

    before = await stored_state(blog.rt)
    r = await blog.instance.session.post(blog.shared_inbox, data=chunks(),
                                         headers={**headers, **signed})
    assert r.status == 413
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize(("shape", "depth"), [("object", 40), ("array", 500),
                                               ("array", 200_000)],
                         ids=["objects-past-our-limit", "arrays-past-pyld", "past-json-limit"])
async def test_deep_nesting(blog: Blog, remote: FakeInstance, shape: str, depth: int) -> None:
    """Given a signed activity whose attachment nests `depth` objects or arrays, when it
    arrives, then 400 before any key fetch, and nothing stored."""
    alice = remote.actor("alice")
    nested = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    raw = json.dumps(activity(alice, "Create", note(alice, blog.post.ap_id))).encode()
    raw = raw.replace(b'"attachment": []', b'"attachment": ' + nested.encode())
    before = await stored_state(blog.rt)
    r = await blog.send(alice, {}, body=raw)
    assert r.status == 400
    assert "deep" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("context", ["nested-arrays", "term-chain"])
async def test_hostile_context(blog: Blog, remote: FakeInstance, context: str) -> None:
    """Given a signed reply whose @context nests 500 arrays deep, or defines 600 terms each
    through the next, when it arrives, then 400 before any key fetch (no RecursionError in
    the JSON-LD processor), and nothing stored."""
    alice = remote.actor("alice")
    doc = activity(alice, "Create", note(alice, blog.post.ap_id))
    if context == "nested-arrays":
        raw = json.dumps(doc).replace('"@context": [', '"@context": [' + "[" * 500 + "]" * 500
                                      + ", ", 1).encode()
    else:
        chain: dict[str, Any] = {f"t{i}": f"t{i + 1}:x" for i in range(599)}
        chain["t599"] = "https://e.example/ns#"
        raw = json.dumps({**doc, "@context": [*doc["@context"], chain]}).encode()
    before = await stored_state(blog.rt)
    r = await blog.send(alice, {}, body=raw)
    assert r.status == 400
    assert ("deeper" if context == "nested-arrays" else "more than 256 terms") in \
        (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe",
                                  b'{"type": "Create"}'],
                         ids=["syntax", "array", "nan", "not-utf8", "no-id-or-actor"])
async def test_malformed_body(blog: Blog, remote: FakeInstance, body: bytes) -> None:
    """Given a properly signed request whose body is not a usable activity, then 400,
    nothing stored and no key fetched."""
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, {}, body=body)
    assert r.status == 400
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/json",
                                          "application/x-www-form-urlencoded"])
async def test_wrong_content_type(blog: Blog, remote: FakeInstance, content_type: str) -> None:
    """Given a signed reply sent as a non-ActivityStreams type, then 415 and nothing stored."""
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)),
                        content_type=content_type)
    assert r.status == 415
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


async def test_activity_id_on_another_origin(blog: Blog, remotes: list[FakeInstance]) -> None:
    """Given alice, when her activity carries an id on another server, then 400 and nothing
    fetched anywhere."""
    remote, other = remotes
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor,
                                        id=other.new_id("activities")))
    assert r.status == 400
    assert remote.hits == [] and other.hits == []
    assert await blog.rows("SELECT count(*) FROM followers") == [(0,)]


# --- replays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Create", "Follow", "Like"])
async def test_replayed_activity_changes_nothing(blog: Blog, remote: FakeInstance,
                                                 kind: str) -> None:
    """Given an activity processed once, when the very same activity is delivered again
    (also after it was undone), then nothing changes and no new delivery is queued."""
    alice = remote.actor("alice")
    doc = {
        "Create": activity(alice, "Create", note(alice, blog.post.ap_id)),
        "Follow": activity(alice, "Follow", blog.rt.urls.actor),
        "Like": activity(alice, "Like", blog.post.ap_id),
    }[kind]
    assert (await blog.send(alice, doc)).status == 202
    once = await stored_state(blog.rt)
    r = await blog.send(alice, doc)
    assert r.status == 202
    assert (await r.json())["outcome"] == "duplicate activity"
    assert await stored_state(blog.rt) == once
    if kind != "Create":
        assert (await blog.send(alice, activity(alice, "Undo", doc))).status == 202
        undone = await stored_state(blog.rt)
        assert (await blog.send(alice, doc)).status == 202
        assert await stored_state(blog.rt) == undone
        assert undone["followers"] == [] and undone["reactions"] == []
