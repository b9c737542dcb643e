"""Interop with Fedify, an independent ActivityPub implementation (TypeScript): it reads our
actor, posts and WebFinger, signs activities into our inbox, and verifies what we sign.

Each test runs one Node script from tests/interop/fedify as a subprocess against a real
fedcomments server; the script reads a JSON plan on stdin and prints one JSON result.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from fedcomments.services import replies
from tests.conftest import Instance, InstanceFactory
from tests.helpers.fediverse import (
    MASTODON_CONTEXT,
    PUBLIC,
    FakeActor,
    FakeInstance,
    activity,
    deliver,
    note,
    now_iso,
)
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import form_token

FEDIFY_DIR = Path(__file__).parent / "interop" / "fedify"
NODE = shutil.which("node")
FEDIFY_INSTALLED = (FEDIFY_DIR / "node_modules" / "@fedify" / "fedify" / "package.json").is_file()
# Node starts and imports Fedify in well under a second; the bound only catches a hang.
SCRIPT_TIMEOUT = 60.0

if NODE is None:
    pytest.skip("node not found: install Node.js >= 20, then run npm ci --prefix "
                "tests/interop/fedify", allow_module_level=True)
if not FEDIFY_INSTALLED:
    pytest.skip("node_modules missing: run npm ci --prefix tests/interop/fedify",
                allow_module_level=True)

CAVAGE = "draft-cavage-http-signatures-12"
RFC9421 = "rfc9421"
AS = "https://www.w3.org/ns/activitystreams#"


async def fedify(script: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Run one interop script with `plan` on stdin; its JSON result, or fail with its log."""
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE, str(FEDIFY_DIR / script), cwd=FEDIFY_DIR,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(plan).encode()),
                                          SCRIPT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{script} did not finish within {SCRIPT_TIMEOUT} s") from None
    lines = out.decode().strip().splitlines()
    assert lines, f"{script} printed nothing (exit {proc.returncode}): {err.decode()[-2000:]}"
    answer = json.loads(lines[-1])
    log = "\n".join(answer["logs"][-40:])
    assert answer["ok"], f"{script} failed: {answer.get('error')}\nFedify log:\n{log}"
    result: dict[str, Any] = answer["result"]
    result["log"] = answer["logs"]
    return result


def spki_b64(public_pem: str) -> str:
    key = serialization.load_pem_public_key(public_pem.encode())
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


# --- 1. Fedify reads what we publish -------------------------------------------------------


async def test_fedify_reads_actor_post_and_webfinger(instance: Instance) -> None:
    """Given a post, when Fedify looks them up, then actor/post/acct: give Person+key/Article."""
    post = await add_post_via_api(instance, url="https://blog.example/2024/interop/",
                                  title="Interop", summary="Talking to Fedify",
                                  tags=["fediverse"], published="2024-05-01T10:00:00Z")
    host = instance.url.removeprefix("http://")
    actor_id = f"{instance.url}/users/blog"
    res = await fedify("read.mjs", {"actor": actor_id, "post": post["ap_id"],
                                    "acct": f"acct:blog@{host}", "hosts": [host]})

    our_key = {
        "id": f"{actor_id}#main-key", "owner": actor_id, "algorithm": "RSASSA-PKCS1-v1_5",
        "hash": "SHA-256", "modulusLength": 2048, "spki": spki_b64(instance.rt.keys.public_pem),
    }
    assert res["actor"] == {
        "isPerson": True, "type": f"{AS}Person", "id": actor_id,
        "preferredUsername": "blog", "name": "Test Blog",
        "summary": "<p>A blog about tests.</p>", "url": "https://blog.example/",
        "inbox": f"{actor_id}/inbox", "outbox": f"{actor_id}/outbox",
        "followers": f"{actor_id}/followers", "following": f"{actor_id}/following",
        "sharedInbox": f"{instance.url}/inbox", "manuallyApprovesFollowers": False,
        "publicKeyIds": [f"{actor_id}#main-key"],
        "publicKey": our_key, "publicKeys": [our_key],
    }
    # What Fedify's verifyRequest does with a keyId: fetch it and find it in the actor.
    assert res["fetchedKey"] == our_key

    article = res["article"]
    replies = article.pop("replies")
    assert article == {
        "isArticle": True, "type": f"{AS}Article", "id": post["ap_id"], "name": "Interop",
        "url": "https://blog.example/2024/interop/", "attributedTo": [actor_id],
        "to": [PUBLIC], "cc": [f"{actor_id}/followers"],
        "content": "<p>Talking to Fedify</p><p><a href=\"https://blog.example/2024/interop/\">"
                   "https://blog.example/2024/interop/</a></p>",
        "published": "2024-05-01T10:00:00Z", "sensitive": False,
        "context": [f"{post['ap_id']}/context"],
        "tags": [{"type": f"{AS}Hashtag", "name": "#fediverse",
                  "href": f"{instance.url}/tags/fediverse"}],
        "repliesId": f"{post['ap_id']}/replies",
    }
    # Fedify dereferenced the replies collection from our server.
    assert replies == {"type": f"{AS}OrderedCollection", "id": f"{post['ap_id']}/replies",
                       "totalItems": 0}

    assert res["webfinger"]["subject"] == f"acct:blog@{host}"
    assert res["webfinger"]["aliases"] == [actor_id]
    assert res["webfinger"]["self"] == {"rel": "self", "type": "application/activity+json",
                                        "href": actor_id}
    assert res["byHandle"] == {"type": f"{AS}Person", "id": actor_id}
    assert res["errors"] == []


# --- 2. Fedify signs, our inbox verifies ---------------------------------------------------


def fedify_reply(actor: FakeActor, act_id: str, note_id: str, in_reply_to: str,
                 content: str) -> dict[str, Any]:
    """A public reply as Fedify's vocabulary builds it (send.mjs turns this into a Create)."""
    return {"type": "Create", "id": act_id, "actor": actor.id,
            "note": {"id": note_id, "inReplyTo": in_reply_to, "content": content,
                     "published": now_iso(), "to": [PUBLIC], "cc": [actor.followers]}}


@pytest.mark.parametrize("spec", [CAVAGE, RFC9421])
async def test_fedify_signed_follow_and_replies_are_accepted(
    make_instance: InstanceFactory, remote: FakeInstance, spec: str
) -> None:
    """Given Fedify-signed Follow/replies, when POSTed, then 202 and stored; tampered → 401."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc)
    alice = remote.actor("alice")
    follow_id, first, second, forged = (remote.new_id("activities") for _ in range(4))
    n1, n2, n3 = (remote.new_id("objects") for _ in range(3))
    shared, personal = f"{fc.url}/inbox", f"{fc.url}/users/blog/inbox"
    sends = [
        {"inbox": shared, "activity": {"type": "Follow", "id": follow_id, "actor": alice.id,
                                       "object": fc.rt.urls.actor}},
        {"inbox": personal,
         "activity": fedify_reply(alice, first, n1, post["ap_id"], "<p>First!</p>")},
        {"inbox": shared, "activity": fedify_reply(alice, second, n2, n1, "<p>Second</p>")},
        {"inbox": personal,
         "activity": fedify_reply(alice, forged, n3, post["ap_id"], "<p>Honest</p>"),
         "tamper": {"from": "Honest", "to": "Forged"}},
    ]
    res = await fedify("send.mjs", {"spec": spec, "keyId": alice.key_id,
                                    "privateKeyPem": alice.keypair.private_pem, "sends": sends})

    results = res["results"]
    assert [r["status"] for r in results] == [202, 202, 202, 401], results
    assert json.loads(results[3]["answer"])["error"].startswith("digest_mismatch")
    for r in results:
        names = set(r["headers"])
        if spec == RFC9421:
            assert {"signature-input", "signature", "content-digest"} <= names
        else:
            assert "signature" in names and "digest" in names and "signature-input" not in names
    # Fedify compacts the public collection to "as:Public"; we must still read it as public.
    assert results[1]["body"]["object"]["to"] == "as:Public"

    db = fc.rt.db.read
    followers = await db.fetchall(
        "SELECT a.ap_id, f.follow_id FROM followers f JOIN actors a ON a.id = f.actor_id")
    assert [tuple(r) for r in followers] == [(alice.id, follow_id)]
    rows = await db.fetchall(
        "SELECT c.ap_id, p.ap_id, parent.ap_id, c.content, c.status, c.visibility, a.ap_id "
        "FROM comments c JOIN posts p ON p.id = c.post_id JOIN actors a ON a.id = c.actor_id "
        "LEFT JOIN comments parent ON parent.id = c.parent_id ORDER BY c.id")
    assert [tuple(r) for r in rows] == [
        (n1, post["ap_id"], None, "<p>First!</p>", "approved", "public", alice.id),
        (n2, post["ap_id"], n1, "<p>Second</p>", "approved", "public", alice.id),
    ]
    processed = await db.fetchall("SELECT ap_id FROM processed_activities WHERE ap_id = ?",
                                  (forged,))
    assert list(processed) == []


# --- 3. We sign, Fedify verifies -----------------------------------------------------------


def tampered(req: dict[str, Any], label: str, *, fix_digest: bool) -> dict[str, Any]:
    """`req` with a changed body; with `fix_digest` the digest headers match the new body,
    so only the signature itself can catch it."""
    body = req["body"].replace('"Accept"', '"Reject"')
    assert body != req["body"]
    headers = dict(req["headers"])
    if fix_digest:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        for name in list(headers):
            if name.lower() == "digest":
                headers[name] = f"SHA-256={digest}"
            elif name.lower() == "content-digest":
                headers[name] = f"sha-256=:{digest}:"
    return {**req, "label": label, "headers": headers, "body": body}


@pytest.mark.parametrize(("scheme", "spec"), [("cavage", CAVAGE), ("rfc9421", RFC9421)])
async def test_fedify_verifies_our_signed_accept_and_fetch(
    make_instance: InstanceFactory, remote: FakeInstance, scheme: str, spec: str
) -> None:
    """Given a Follow, when we send Accept and a GET, then Fedify verifies them, not forgeries."""
    # The test sends the job itself, so no delivery worker may send it too (it raced the
    # test's own POST and the peer saw the Accept twice).
    fc: Instance = await make_instance(
        federation={"signature_scheme": scheme, "delivery_worker": False})
    bob = remote.actor("bob")
    follow = activity(bob, "Follow", fc.rt.urls.actor)
    r = await deliver(fc.session, bob, f"{fc.url}/inbox", follow)
    assert r.status == 202, await r.text()
    job = await fc.rt.db.read.fetchone("SELECT activity_id, inbox, body FROM deliveries")
    assert job is not None and job["inbox"] == bob.inbox

    # Exactly what the delivery worker does with a job: a signed POST of the stored bytes.
    answer = await fc.rt.remote.post(job["inbox"], bytes(job["body"]))
    assert answer.status == 202
    note_doc = remote.publish(note(bob, None))
    await fc.rt.remote.get_json(note_doc["id"])
    (posted,) = remote.received
    (fetched,) = remote.fetched
    accept = {"label": "accept", "method": "POST", "url": job["inbox"],
              "headers": posted.headers, "body": posted.body.decode()}
    get = {"label": "get", "method": "GET", "url": note_doc["id"],
           "headers": fetched.headers, "body": None}
    requests = [accept, get, tampered(accept, "tampered", fix_digest=False),
                tampered(accept, "re-digested", fix_digest=True)]
    res = await fedify("verify.mjs", {"spec": spec, "now": fc.clock().isoformat(),
                                      "requests": requests})

    actor_id = fc.rt.urls.actor
    our_key = {"id": f"{actor_id}#main-key", "owner": actor_id}
    by_label = {r["label"]: r for r in res["results"]}
    assert by_label["accept"]["key"] == our_key, "\n".join(res["log"][-20:])
    assert by_label["accept"]["activity"] == {
        "type": f"{AS}Accept", "id": job["activity_id"], "actor": actor_id, "to": [bob.id],
        "objectId": follow["id"],
        "object": {"type": f"{AS}Follow", "id": follow["id"], "actor": bob.id,
                   "object": actor_id},
    }
    assert by_label["get"]["key"] == our_key, "\n".join(res["log"][-20:])
    assert by_label["accept"]["why"] == [] and by_label["get"]["why"] == []
    # Each forgery is refused for its own reason: the digest, then the signature itself.
    assert by_label["tampered"]["key"] is None
    digest_failure = "Content-Digest verification failed" if spec == RFC9421 else "digest mismatch"
    assert any(digest_failure in line for line in by_label["tampered"]["why"])
    assert by_label["re-digested"]["key"] is None
    assert any("fetched key" in line and "invalid" in line
               for line in by_label["re-digested"]["why"]), by_label["re-digested"]["why"]
    if spec == RFC9421:
        assert "signature-input" in {name.lower() for name in posted.headers}
    else:
        assert "signature-input" not in {name.lower() for name in posted.headers}


# --- 4. Fedify reads a whole conversation through our context collection ------------------


async def test_fedify_reads_the_whole_thread_through_our_context(
        make_instance: InstanceFactory, remote: FakeInstance) -> None:
    """Given a post with a fediverse reply (served by its own server), the owner's answer
    and an approved reader comment, when Fedify follows the Article's `context` and
    traverses that collection, then it reads the post and all three, in order, each from
    its own origin, each naming the same context; a private reply is not among them."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc, title="Conversations")
    alice, bob = remote.actor("alice"), remote.actor("bob")
    # Served as Mastodon serves a status: with its @context.
    reply = remote.publish({"@context": MASTODON_CONTEXT,
                            **note(alice, post["ap_id"], content="<p>First!</p>")})
    resp = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(alice, "Create", reply))
    assert resp.status == 202
    hidden = note(bob, post["ap_id"], content="<p>psst</p>", visibility="followers")
    resp = await deliver(fc.session, bob, f"{fc.url}/inbox", activity(bob, "Create", hidden))
    assert resp.status == 202
    stored = await fc.rt.db.read.fetchone("SELECT id FROM comments WHERE ap_id = ?",
                                          (reply["id"],))
    fc.clock.advance(minutes=1)
    answer = await replies.owner_reply(fc.rt, stored[0], "Thank you")
    token = await form_token(fc, post["id"])
    fc.clock.advance(minutes=1)  # a person typing (a form sent within seconds waits)
    resp = await fc.session.post(f"{fc.url}/api/v1/comments", headers={"Origin": fc.url},
                                 json={"post": str(post["id"]), "parent": str(answer.id),
                                       "name": "Reader", "text": "Me too", "token": token})
    assert resp.status == 201, await resp.text()
    reader = (await resp.json())["comment"]["id"]

    res = await fedify("context.mjs", {"post": post["ap_id"]})
    context = f"{post['ap_id']}/context"
    assert res["contextId"] == context
    assert res["collection"] == {"type": f"{AS}OrderedCollection", "id": context,
                                 "totalItems": 4, "attributedTo": [f"{fc.url}/users/blog"]}
    assert [(i["type"], i["id"], i["inReplyTo"]) for i in res["items"]] == [
        (f"{AS}Article", post["ap_id"], None),
        (f"{AS}Note", reply["id"], post["ap_id"]),
        (f"{AS}Note", answer.ap_id, reply["id"]),
        (f"{AS}Note", f"{fc.url}/comments/{reader}", answer.ap_id),
    ]
    assert [i["content"] for i in res["items"][1:]] == [
        "<p>First!</p>", res["items"][2]["content"], res["items"][3]["content"]]
    assert "Thank you" in res["items"][2]["content"] and "Me too" in res["items"][3]["content"]
    assert all(i["context"] == [context] for i in res["items"] if i["id"] != reply["id"])
    assert res["errors"] == []
