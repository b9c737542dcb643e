"""Real documents from other implementations, replayed through the real inbox (issue 3,
point 9 and "How it will be checked"): every Create, Like, Announce, Follow, Delete and Undo
in ../shared/samples is rewritten to come from a fake instance that serves its actor with a
key we hold, aimed at our blog, signed (our signer and the independent ones, both schemes)
and POSTed; each must get 202 and do exactly what it says."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers.fediverse import (
    ACTOR_CONTEXT,
    MASTODON_CONTEXT,
    PUBLIC,
    FakeInstance,
    Signer,
    our_cavage,
    our_rfc9421,
)
from tests.helpers.inbox import Blog
from tests.helpers.independent import cavage_sign, rfc9421_sign

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"
REPLAYED = ("Create", "Like", "Announce", "Follow", "Delete", "Undo")
NOTE_TYPES = ("Note", "Article", "Page", "Question")
SIGNERS: tuple[Signer, ...] = (our_cavage, cavage_sign, our_rfc9421, rfc9421_sign)
_PUBLIC = (PUBLIC, "as:Public", "Public")
_ORIGIN = re.compile(r"^https?://[^/]+")


def _load() -> list[tuple[str, dict[str, Any]]]:
    if not SAMPLES.is_dir():
        return []
    found = []
    for path in sorted(SAMPLES.glob("*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("type") in REPLAYED:
            found.append((f"{path.parent.name}/{path.name}", doc))
    return found


ALL = _load()
pytestmark = pytest.mark.skipif(not ALL, reason=f"no samples in {SAMPLES}")


# --- rewriting ------------------------------------------------------------------------------


def _id(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _origin(url: str | None) -> str | None:
    match = _ORIGIN.match(url or "")
    return match.group(0) if match else None


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: v if k == "@context" else _map_strings(v, fn) for k, v in value.items()}
    return value


class Replay:
    """One sample moved onto a fake instance, with the key we sign for its actor."""

    def __init__(self, blog: Blog, remote: FakeInstance, doc: dict[str, Any],
                 signer: Signer) -> None:
        self.blog, self.remote, self.signer = blog, remote, signer
        doc = self._aim(copy.deepcopy(doc))
        # Every origin the sender speaks for (actor, activity, objects) becomes the fake's.
        origins = {_origin(_id(doc.get("actor"))), _origin(doc.get("id"))}
        obj = doc.get("object")
        if isinstance(obj, dict):
            origins |= {_origin(_id(obj)), _origin(_id(obj.get("actor"))),
                        _origin(_id(obj.get("attributedTo")))}
        origins -= {None, _origin(blog.rt.urls.base_url)}
        self.doc = _map_strings(doc, self._mapper(origins))
        self.actor_id = _id(self.doc["actor"]) or ""
        self.keypair = remote.actor("sample").keypair  # from the helper's key pool
        self.key_id = f"{self.actor_id}#main-key"
        remote.serve(urlsplit(self.actor_id).path or "/", {
            "@context": ACTOR_CONTEXT, "id": self.actor_id, "type": "Person",
            "preferredUsername": "sample", "inbox": f"{self.actor_id.rstrip('/')}/inbox",
            "followers": f"{self.actor_id.rstrip('/')}/followers",
            "publicKey": {"id": self.key_id, "owner": self.actor_id,
                          "publicKeyPem": self.keypair.public_pem}})

    def _mapper(self, origins: set[str | None]) -> Callable[[str], str]:
        def rewrite(text: str) -> str:
            origin = _origin(text)
            return self.remote.url + text[len(origin):] if origin in origins and origin else text
        return rewrite

    def _aim(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Point the activity at our blog: follows at our actor, reactions and replies at
        our post (the samples aim at the servers they were captured on)."""
        urls = self.blog.rt.urls
        kind, obj = doc["type"], doc.get("object")
        if kind == "Follow":
            doc["object"] = urls.actor
        elif kind in ("Like", "Announce"):
            doc["object"] = self._at_post(obj)
        elif kind == "Undo" and isinstance(obj, dict):
            obj["object"] = urls.actor if obj.get("type") == "Follow" else self._at_post(
                obj.get("object"))
        elif kind == "Create" and isinstance(obj, dict) and obj.get("inReplyTo"):
            obj["inReplyTo"] = self._at_post(obj["inReplyTo"])
        return doc

    def _at_post(self, value: Any) -> Any:
        post = self.blog.post.ap_id
        return {**value, "id": post} if isinstance(value, dict) else post

    def activity(self, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
        """A companion activity by the same actor (to set up what the sample undoes)."""
        return {"@context": MASTODON_CONTEXT, "id": self.remote.new_id("activities"),
                "type": kind, "actor": self.actor_id, "object": obj, **extra}

    def note(self, object_id: str) -> dict[str, Any]:
        return {"id": object_id, "type": "Note", "attributedTo": self.actor_id,
                "inReplyTo": self.blog.post.ap_id, "content": "<p>to be deleted</p>",
                "to": [PUBLIC], "cc": []}

    async def send(self, doc: dict[str, Any]) -> str:
        raw = json.dumps(doc).encode()
        headers = {"Content-Type": "application/activity+json"}
        signed = self.signer("POST", self.blog.shared_inbox, dict(headers), raw, self.key_id,
                             self.keypair.private_pem, self.blog.instance.clock())
        r = await self.blog.instance.session.post(self.blog.shared_inbox, data=raw,
                                                  headers={**headers, **signed})
        assert r.status == 202, await r.text()
        return str((await r.json())["outcome"])


def expected_visibility(obj: dict[str, Any], followers: str) -> str:
    to = obj.get("to", [])
    cc = obj.get("cc", [])
    to, cc = ([to] if isinstance(to, str) else to), ([cc] if isinstance(cc, str) else cc)
    if any(p in to for p in _PUBLIC):
        return "public"
    if any(p in cc for p in _PUBLIC):
        return "unlisted"
    return "followers" if followers in to + cc else "direct"


# --- the replay -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sample"), ALL, ids=[name for name, _ in ALL])
async def test_sample_replayed(blog: Blog, remote: FakeInstance, name: str,
                               sample: dict[str, Any]) -> None:
    """Given a real document from another implementation, when it is replayed through our
    inbox from a fake instance (signed, aimed at our blog; a Create as a reply to our post),
    then 202 and its effect: a threaded comment, a follower with a queued Accept, a reaction,
    or the removal of what an earlier activity made."""
    signer = SIGNERS[[n for n, _ in ALL].index(name) % len(SIGNERS)]
    kind = sample["type"]
    if kind == "Create" and isinstance(sample["object"], dict):
        sample = copy.deepcopy(sample)
        sample["object"]["inReplyTo"] = "{{LOCAL_POST_URL}}"  # every Create as a reply
    replay = Replay(blog, remote, sample, signer)
    doc, obj = replay.doc, replay.doc.get("object")
    await {"Create": _create, "Follow": _follow, "Like": _reaction, "Announce": _reaction,
           "Delete": _delete, "Undo": _undo}[kind](replay, doc, obj)


async def _create(replay: Replay, doc: dict[str, Any], obj: Any) -> None:
    outcome = await replay.send(doc)
    comments = await replay.blog.comments()
    if obj.get("type") not in NOTE_TYPES:
        assert (outcome, comments) == ("not a note", [])
        return
    assert outcome == "created"
    (comment,) = comments
    assert (comment["ap_id"], comment["parent_id"], comment["author"]) == (
        obj["id"], None, replay.actor_id)
    assert comment["content"]
    followers = f"{replay.actor_id.rstrip('/')}/followers"
    assert comment["visibility"] == expected_visibility(obj, followers)


async def _follow(replay: Replay, doc: dict[str, Any], obj: Any) -> None:
    assert await replay.send(doc) == "follower added"
    assert await replay.blog.rows("SELECT a.ap_id, f.follow_id FROM followers f JOIN actors a "
                                  "ON a.id = f.actor_id") == [(replay.actor_id, doc["id"])]
    ((body,),) = await replay.blog.rows("SELECT body FROM deliveries")
    assert json.loads(body)["object"]["id"] == doc["id"]


async def _reaction(replay: Replay, doc: dict[str, Any], obj: Any) -> None:
    assert await replay.send(doc) == "reaction added"
    assert await replay.blog.rows("SELECT ap_id, type, target_ap_id FROM reactions") == [
        (doc["id"], doc["type"].lower(), replay.blog.post.ap_id)]


async def _delete(replay: Replay, doc: dict[str, Any], obj: Any) -> None:
    target = _id(obj)
    assert target is not None
    if target == replay.actor_id:  # Delete{actor}: known actor with a follow and a reply
        await replay.send(replay.activity("Follow", replay.blog.rt.urls.actor))
        await replay.send(replay.activity("Create", replay.note(f"{target.rstrip('/')}/n/1")))
        assert await replay.send(doc) == "actor deleted (1 comments removed)"
        assert await replay.blog.rows("SELECT count(*) FROM followers") == [(0,)]
    else:
        assert await replay.send(replay.activity("Create", replay.note(target))) == "created"
        assert await replay.send(doc) == "deleted"
        again = await replay.send(replay.activity("Create", replay.note(target)))
        assert again == "deleted before"
    assert await replay.blog.comments() == []


async def _undo(replay: Replay, doc: dict[str, Any], obj: Any) -> None:
    if isinstance(obj, dict):
        inner = {"@context": MASTODON_CONTEXT, **obj}
    else:  # Mastodon's compact Undo: only the id of a Like it sent before
        inner = replay.activity("Like", replay.blog.post.ap_id, id=obj)
    first = await replay.send(inner)
    assert first in ("follower added", "reaction added")
    undone = await replay.send(doc)
    assert undone == ("follower removed" if first == "follower added" else "reaction removed")
    assert await replay.blog.rows("SELECT (SELECT count(*) FROM followers), "
                                  "(SELECT count(*) FROM reactions)") == [(0, 0)]


NON_REPLIES = [(n, s) for n, s in ALL if s["type"] == "Create" and isinstance(s["object"], dict)
               and s["object"].get("type") in NOTE_TYPES and not s["object"].get("inReplyTo")]


@pytest.mark.parametrize(("name", "sample"), NON_REPLIES, ids=[n for n, _ in NON_REPLIES])
async def test_sample_non_reply_not_imported(blog: Blog, remote: FakeInstance, name: str,
                                             sample: dict[str, Any]) -> None:
    """Given a real Create of a note that answers nothing of ours, when it is replayed as
    sent, then 202 and no comment: unsolicited notes never become comments."""
    replay = Replay(blog, remote, sample, our_cavage)
    assert await replay.send(replay.doc) == "not a reply"
    assert await blog.comments() == []
