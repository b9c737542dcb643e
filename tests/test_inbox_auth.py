"""Inbox authentication: both signature schemes, every key style, the key cache and rotation,
the time window, and the order of refusals (issue 3, points 1-7)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from http_message_signatures.structures import CaseInsensitiveDict
from httpsig import HeaderSigner

from tests.conftest import InstanceFactory
from tests.helpers.fediverse import (
    SIGNERS,
    FakeInstance,
    Signer,
    activity,
    note,
    our_cavage,
    our_rfc9421,
)
from tests.helpers.inbox import Blog, start_blog_with_post, stored_state
from tests.helpers.independent import Message, cavage_sign, rfc9421_sign


@pytest.fixture
async def quiet_blog(make_instance: InstanceFactory) -> Blog:
    """A blog without its background delivery worker, for tests that jump the clock and count
    the requests reaching the peer: the worker shares that clock, that database and that
    peer (it delivers the Accept of a Follow when it next wakes, which a slow run reaches
    mid-test), and nothing but the inbox may act on either while the test counts."""
    return await start_blog_with_post(make_instance, federation={"delivery_worker": False})


def independent_rfc9421(algorithm: Any, *, expires_in: timedelta | None = None) -> Signer:
    """An RFC 9421 signer by http-message-signatures with any algorithm and `expires`."""

    def sign(method: str, url: str, headers: dict[str, str], body: bytes | None,
             key_id: str, pem: str, now: datetime) -> dict[str, str]:
        message = Message(method, url, CaseInsensitiveDict(headers))
        HTTPMessageSigner(
            signature_algorithm=algorithm,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: pem.encode()}),
        ).sign(message, key_id=key_id, created=now,
               expires=now + expires_in if expires_in else None, label="sig1", body=body,
               covered_component_ids=("@method", "@target-uri"))
        return {k: v for k, v in message.headers.items() if k.lower() not in
                {h.lower() for h in headers}}

    return sign


async def followers(blog: Blog) -> list[tuple[Any, ...]]:
    return await blog.rows("SELECT a.ap_id, f.follow_id FROM followers f "
                           "JOIN actors a ON a.id = f.actor_id")


# --- both schemes, both signers, both inboxes ----------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
@pytest.mark.parametrize("inbox", ["shared", "actor"])
async def test_signed_follow_is_accepted(blog: Blog, remote: FakeInstance, signer: Signer,
                                         inbox: str) -> None:
    """Given a Mastodon-style actor, when it POSTs a signed Follow (each scheme, our signer and
    an independent one, shared and actor inbox), then 202 and the follower is stored."""
    alice = remote.actor("alice")
    follow = activity(alice, "Follow", blog.rt.urls.actor)
    url = blog.shared_inbox if inbox == "shared" else blog.actor_inbox
    r = await blog.send(alice, follow, signer=signer, inbox=url)
    assert r.status == 202, await r.text()
    assert await followers(blog) == [(alice.id, follow["id"])]


@pytest.mark.parametrize("algorithm", [algorithms.RSA_V1_5_SHA256, algorithms.RSA_PSS_SHA512],
                         ids=["rsa-v1_5-sha256", "rsa-pss-sha512"])
async def test_rfc9421_rsa_algorithms(blog: Blog, remote: FakeInstance, algorithm: Any) -> None:
    """Given an RSA actor, when it signs RFC 9421 with rsa-v1_5-sha256 or rsa-pss-sha512 (by
    http-message-signatures), then the Follow is accepted."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                        signer=independent_rfc9421(algorithm))
    assert r.status == 202, await r.text()
    assert [a for a, _ in await followers(blog)] == [alice.id]


@pytest.mark.parametrize("key_style", ["mastodon", "multikey"])
@pytest.mark.parametrize("signer", [our_cavage, our_rfc9421, independent_rfc9421(
    algorithms.ED25519)], ids=["cavage-hs2019", "rfc9421-ours", "rfc9421-independent"])
async def test_ed25519_peers(blog: Blog, remote: FakeInstance, key_style: str,
                             signer: Signer) -> None:
    """Given an Ed25519 actor (key as publicKeyPem, or Fedify's Multikey in assertionMethod),
    when it signs with hs2019 (cavage) or ed25519 (RFC 9421), then its Follow is accepted."""
    eve = remote.actor("eve", ed25519=True, key_style=key_style)
    r = await blog.send(eve, activity(eve, "Follow", blog.rt.urls.actor), signer=signer)
    assert r.status == 202, await r.text()
    assert [a for a, _ in await followers(blog)] == [eve.id]
    assert await blog.rows("SELECT key_id FROM actor_keys") == [(eve.key_id,)]


@pytest.mark.parametrize("key_style", ["gotosocial", "standalone"])
async def test_key_served_apart_from_actor(blog: Blog, remote: FakeInstance,
                                           key_style: str) -> None:
    """Given a key served on its own (GoToSocial's stub at /main-key, or a CryptographicKey
    document), when its owner sends a Follow, then the key is fetched, the owner is fetched
    from its own id and must list the key, and the Follow is accepted."""
    bob = remote.actor("bob", key_style=key_style)
    key_path = bob.key_id.removeprefix(remote.url)
    r = await blog.send(bob, activity(bob, "Follow", blog.rt.urls.actor))
    assert r.status == 202, await r.text()
    assert remote.hits == [key_path, "/users/bob"]
    assert await blog.rows("SELECT key_id FROM actor_keys") == [(bob.key_id,)]


@pytest.mark.parametrize("key_style", ["gotosocial", "standalone"])
async def test_key_not_listed_by_owner_refused(blog: Blog, remote: FakeInstance,
                                               key_style: str) -> None:
    """Given a standalone key whose owner's document lists another key, when a request is
    signed with it, then 401 and nothing is stored."""
    bob = remote.actor("bob", key_style=key_style)
    bob.extra = {"publicKey": {"id": f"{bob.id}#other", "owner": bob.id,
                               "publicKeyPem": remote.actor("carol").keypair.public_pem}}
    before = await stored_state(blog.rt)
    r = await blog.send(bob, activity(bob, "Follow", blog.rt.urls.actor))
    assert r.status == 401
    assert await stored_state(blog.rt) == before


async def test_bare_actor_id_as_key_id(blog: Blog, remote: FakeInstance) -> None:
    """Given an actor that signs with its own id as keyId, when it sends a Follow, then its
    only key is used and the Follow is accepted."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), key_id=alice.id)
    assert r.status == 202, await r.text()


@pytest.mark.parametrize(("content_type", "status"), [
    ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', 202),
    ("application/activity+json; charset=utf-8", 202),
    ("application/json", 401), ("text/html", 401), ("application/ld+json", 401)])
async def test_key_document_content_type(blog: Blog, remote: FakeInstance, content_type: str,
                                         status: int) -> None:
    """Given an actor document served as `content_type`, when its key signs a Follow, then
    only ActivityStreams types (activity+json, ld+json with the AS profile) are read."""
    alice = remote.actor("alice")
    remote.serve("/users/alice", alice.document(), content_type)
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))
    assert r.status == status, await r.text()
    assert len(await followers(blog)) == (1 if status == 202 else 0)


async def test_sha512_digest_accepted(blog: Blog, remote: FakeInstance) -> None:
    """Given a cavage signature whose Digest is SHA-512 (pyhttpsig signs it), when it
    arrives, then the digest is checked and the Follow accepted; a wrong one is refused."""
    alice = remote.actor("alice")

    def sha512(body: bytes) -> Signer:
        def sign(method: str, url: str, headers: dict[str, str], _body: bytes | None,
                 key_id: str, pem: str, now: datetime) -> dict[str, str]:
            added = {"Host": urlsplit(url).netloc, "Date": format_datetime(now, usegmt=True),
                     "Digest": "SHA-512=" + base64.b64encode(hashlib.sha512(body).digest())
                     .decode()}
            signer = HeaderSigner(key_id, pem, algorithm="rsa-sha256", sign_header="signature",
                                  headers=["(request-target)", "host", "date", "digest"])
            signed = signer.sign({**headers, **added}, method=method,
                                 path=urlsplit(url).path)
            return {**added, "Signature": signed["signature"]}
        return sign

    follow = activity(alice, "Follow", blog.rt.urls.actor)
    raw = json.dumps(follow).encode()
    r = await blog.send(alice, follow, body=raw, signer=sha512(b"other"))
    assert r.status == 401
    r = await blog.send(alice, follow, body=raw, signer=sha512(raw))
    assert r.status == 202, await r.text()
    assert [a for a, _ in await followers(blog)] == [alice.id]


# --- key cache, signed fetch, rotation ------------------------------------------------------


async def test_known_key_costs_no_fetch(blog: Blog, remote: FakeInstance) -> None:
    """Given an actor whose key we fetched once, when it sends three more activities, then no
    further request reaches its server."""
    alice = remote.actor("alice")
    assert (await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))).status == 202
    assert remote.hits == ["/users/alice"]
    for _ in range(3):
        reply = activity(alice, "Create", note(alice, blog.post.ap_id))
        assert (await blog.send(alice, reply)).status == 202
    assert remote.hits == ["/users/alice"]
    assert len(await blog.comments()) == 3


async def test_key_fetch_is_signed(blog: Blog, remote: FakeInstance) -> None:
    """Given a peer in authorized-fetch mode (refuses unsigned GETs), when its actor sends an
    activity, then our key fetch carries a signature by our blog key that pyhttpsig accepts,
    and the activity is accepted."""
    remote.require_signed_fetch = {blog.rt.urls.key_id: blog.rt.keys.public_pem}
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))
    assert r.status == 202, await r.text()
    assert remote.hits == ["/users/alice"]


async def test_unsigned_fetch_would_be_refused(blog: Blog, remote: FakeInstance) -> None:
    """Given a peer in authorized-fetch mode that trusts another key than ours, when its actor
    sends an activity, then the key cannot be fetched: 401, nothing stored."""
    remote.require_signed_fetch = {"http://elsewhere/key": blog.rt.keys.public_pem}
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))
    assert r.status == 401
    assert await followers(blog) == []


async def test_key_rotation_refetches_once_per_five_minutes(quiet_blog: Blog,
                                                            remote: FakeInstance) -> None:
    """Given a cached key, when the actor rotates its key, then a failing signature refetches
    the key at most once per 5 minutes: refused without fetch at first, accepted with exactly
    one fetch after 5 minutes, and a forged signature right after costs no fetch."""
    blog = quiet_blog
    clock = blog.instance.clock
    alice = remote.actor("alice")
    assert (await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                            now=clock())).status == 202
    alice.rotate()
    clock.advance(minutes=1)
    r = await blog.send(alice, activity(alice, "Like", blog.post.ap_id), now=clock())
    assert r.status == 401
    assert remote.count("/users/alice") == 1
    clock.advance(minutes=5)
    r = await blog.send(alice, activity(alice, "Like", blog.post.ap_id), now=clock())
    assert r.status == 202, await r.text()
    assert remote.count("/users/alice") == 2
    forged = activity(alice, "Announce", blog.post.ap_id)
    r = await blog.send(alice, forged, now=clock(), private_pem=remote.actor("x").keypair
                        .private_pem)
    assert r.status == 401
    assert remote.count("/users/alice") == 2
    assert await blog.rows("SELECT type FROM reactions") == [("like",)]


async def test_failed_refetch_is_not_repeated(quiet_blog: Blog, remote: FakeInstance) -> None:
    """Given a cached key whose origin then fails (410), when forged requests keep coming,
    then the origin is asked once per 5 minutes, not once per request."""
    blog = quiet_blog
    clock = blog.instance.clock
    alice = remote.actor("alice")
    assert (await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                            now=clock())).status == 202
    remote.gone.add("/users/alice")
    clock.advance(minutes=6)
    wrong = remote.actor("mallory").keypair.private_pem
    for _ in range(3):
        r = await blog.send(alice, activity(alice, "Like", blog.post.ap_id), now=clock(),
                            private_pem=wrong)
        assert r.status == 401
    assert remote.count("/users/alice") == 2


# --- what the signature must cover ------------------------------------------------------------


@pytest.mark.parametrize("signer", [our_cavage, cavage_sign, our_rfc9421, rfc9421_sign],
                         ids=["ours-cavage", "pyhttpsig", "ours-rfc9421", "independent-rfc9421"])
async def test_request_target_with_query_string(blog: Blog, remote: FakeInstance,
                                                signer: Signer) -> None:
    """Given an inbox URL with a query string (with escapes), when a peer signs that exact
    request target, then it verifies; the same signature sent to another query is refused."""
    alice = remote.actor("alice")
    url = f"{blog.shared_inbox}?via=relay%20one&n=1"
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), signer=signer,
                        inbox=url)
    assert r.status == 202, await r.text()
    headers = {"Content-Type": "application/activity+json"}
    like = activity(alice, "Like", blog.post.ap_id)
    body = json.dumps(like).encode()
    signed = signer("POST", url, dict(headers), body, alice.key_id, alice.keypair.private_pem,
                    blog.instance.clock())
    r = await blog.instance.session.post(f"{blog.shared_inbox}?via=other&n=1", data=body,
                                         headers={**headers, **signed})
    assert r.status == 401
    assert await blog.rows("SELECT count(*) FROM reactions") == [(0,)]


@pytest.mark.parametrize("signer", [our_cavage, our_rfc9421], ids=["cavage", "rfc9421"])
@pytest.mark.parametrize(("minutes", "status"), [(-64, 202), (-66, 401), (59, 202), (61, 401)])
async def test_time_window(blog: Blog, remote: FakeInstance, signer: Signer, minutes: int,
                           status: int) -> None:
    """Given our clock, when a request was signed `minutes` away from it, then it is accepted
    inside now-65 min .. now+60 min and refused (401, nothing stored) outside."""
    alice = remote.actor("alice")
    signed_at = blog.instance.clock() + timedelta(minutes=minutes)
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), signer=signer,
                        now=signed_at)
    assert r.status == status, await r.text()
    assert len(await followers(blog)) == (1 if status == 202 else 0)


async def test_rfc9421_expires_honoured(blog: Blog, remote: FakeInstance) -> None:
    """Given an RFC 9421 signature with `expires` 30 s after `created`, when it arrives a
    minute late, then 401; the same signature in time is accepted."""
    alice = remote.actor("alice")
    signer = independent_rfc9421(algorithms.RSA_V1_5_SHA256, expires_in=timedelta(seconds=30))
    late = blog.instance.clock() - timedelta(minutes=1)
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), signer=signer,
                        now=late)
    assert r.status == 401
    assert "expired" in (await r.json())["error"]
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), signer=signer,
                        now=blog.instance.clock())
    assert r.status == 202


async def test_cavage_without_digest_refused(blog: Blog, remote: FakeInstance) -> None:
    """Given a cavage signature that does not cover the Digest, when it arrives, then 401
    before any key fetch."""
    alice = remote.actor("alice")

    def no_digest(method: str, url: str, headers: dict[str, str], body: bytes | None,
                  key_id: str, pem: str, now: datetime) -> dict[str, str]:
        return cavage_sign(method, url, headers, None, key_id, pem, now)

    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor), signer=no_digest)
    assert r.status == 401
    assert remote.hits == []


# --- the order of refusals ---------------------------------------------------------------


async def test_get_on_inbox_is_405(blog: Blog) -> None:
    """Given the inboxes, when they are read with GET or PUT, then 405."""
    for path in ("/inbox", "/users/blog/inbox"):
        assert (await blog.instance.get(path)).status == 405
        r = await blog.instance.session.put(blog.instance.url + path, data=b"{}")
        assert r.status == 405


async def test_unknown_actor_inbox_is_404(blog: Blog, remote: FakeInstance) -> None:
    """Given a signed Follow, when it is POSTed to the inbox of a user we do not have, 404."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                        inbox=f"{blog.instance.url}/users/nobody/inbox")
    assert r.status == 404


async def test_refusal_order(blog: Blog, remote: FakeInstance) -> None:
    """Given one request failing several rules, then the cheapest rule answers: size (413)
    before type (415) before signature (401) before JSON (400) before blocked keyId (403)."""
    alice = remote.actor("alice")
    session, url = blog.instance.session, blog.shared_inbox
    huge = b"x" * (blog.rt.settings.federation.max_body_bytes + 1)
    r = await session.post(url, data=huge, headers={"Content-Type": "text/plain"})
    assert r.status == 413
    r = await session.post(url, data=b"not json", headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = await session.post(url, data=b"not json",
                           headers={"Content-Type": "application/activity+json"})
    assert r.status == 401
    r = await blog.send(alice, {}, body=b"not json")
    assert r.status == 400
    assert remote.hits == []


async def test_delete_of_unknown_actor_fetches_nothing(blog: Blog, remote: FakeInstance) -> None:
    """Given an actor we never saw (its account already gone: 410), when its Delete{actor}
    arrives, then 202 without any request to its server and nothing stored."""
    ghost = remote.actor("ghost")
    remote.gone.add("/users/ghost")
    before = await stored_state(blog.rt)
    delete = activity(ghost, "Delete", ghost.id, id=f"{ghost.id}#delete")
    r = await blog.send(ghost, delete)
    assert r.status == 202
    assert (await r.json())["outcome"] == "unknown actor deleted"
    assert remote.requests == [] and remote.hits == []
    assert await stored_state(blog.rt) == before
