"""Parsing what etiquette and conversations need: actors' consent (FEP-5feb indexable,
discoverable, profile hashtags) and collections (replies, FEP-7888 context), identically on
the fast path and through pyld."""

from __future__ import annotations

from typing import Any

import pytest

from fedcomments.ap.jsonld import Normalizer
from fedcomments.ap.jsonld_contexts import AS2
from fedcomments.ap.parse import parse_actor, parse_collection, parse_object
from fedcomments.errors import ProtocolError

ALICE = "https://social.example/users/alice"
MASTODON_ACTOR_CONTEXT: list[Any] = [
    AS2, "https://w3id.org/security/v1",
    {"toot": "http://joinmastodon.org/ns#", "discoverable": "toot:discoverable",
     "indexable": "toot:indexable", "Hashtag": "as:Hashtag"},
]


@pytest.fixture(params=[True, False], ids=["fast", "pyld"])
def normalizer(request: pytest.FixtureRequest) -> Normalizer:
    return Normalizer(fast_path=request.param)


def actor(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": MASTODON_ACTOR_CONTEXT, "id": ALICE, "type": "Person",
                           "inbox": ALICE + "/inbox", "summary": "<p>hi</p>"}
    doc.update(fields)
    return doc


def test_consent_flags_are_read_when_given(normalizer: Normalizer) -> None:
    """Given Mastodon's indexable and discoverable, they are read; absent, they are None."""
    got = parse_actor(actor(indexable=False, discoverable=True), normalizer=normalizer)
    assert (got.indexable, got.discoverable) == (False, True)
    got = parse_actor(actor(), normalizer=normalizer)
    assert (got.indexable, got.discoverable) == (None, None)


def test_profile_hashtags_come_from_tags_and_bio(normalizer: Normalizer) -> None:
    """Given a bio with a linked hashtag (Mastodon's markup), a plain one, an HTML entity,
    a URL fragment and a word#inside, and a Hashtag tag, the profile's hashtags are the
    real ones, case-folded, without "#"."""
    bio = ('<p>Writer <a href="https://social.example/tags/NoBot" class="mention hashtag">'
           '#<span>NoBot</span></a> &amp; #Fedi and &#35;entity https://x.example/#anchor '
           "mail#inside</p>")
    got = parse_actor(actor(summary=bio, tag=[
        {"type": "Hashtag", "name": "#NoBlog", "href": "https://social.example/tags/noblog"},
        {"type": "Emoji", "name": ":blob:"}]), normalizer=normalizer)
    assert set(got.hashtags) == {"noblog", "nobot", "fedi", "entity"}


def test_mastodon_replies_collection_is_read_from_a_note(normalizer: Normalizer) -> None:
    """Given a Note with Mastodon's replies collection (first page embedded, `next` to the
    others' replies), its id, size and inline items are read; a bare id is read as such;
    an id on another server is dropped, and so is a useless collection."""
    note_id = ALICE + "/statuses/1"
    replies = {"id": note_id + "/replies", "type": "Collection", "totalItems": 2,
               "first": {"type": "CollectionPage", "next": note_id + "/replies?page=1",
                         "partOf": note_id + "/replies", "items": [ALICE + "/statuses/2"]}}
    doc = {"@context": AS2, "id": note_id, "type": "Note", "attributedTo": ALICE,
           "content": "x", "replies": replies}
    got = parse_object(doc, normalizer=normalizer).replies
    assert got is not None
    assert (got.id, got.total_items, got.listed) == (note_id + "/replies", 2, 1)
    doc["replies"] = "https://gotosocial.example/users/alice/statuses/1/replies"
    ref = parse_object(doc, normalizer=normalizer).replies
    assert ref is not None and (ref.id, ref.total_items, ref.listed) == (doc["replies"], None, 0)
    doc["replies"] = {"id": "javascript:alert(1)", "type": "Collection", "totalItems": 3}
    odd = parse_object(doc, normalizer=normalizer).replies
    assert odd is not None and (odd.id, odd.total_items) == (None, 3)
    doc["replies"] = {"id": note_id + "/replies\nx", "type": "Collection"}
    assert parse_object(doc, normalizer=normalizer).replies is None


def test_context_collections_in_every_shape(normalizer: Normalizer) -> None:
    """Given FEP-f228 collections of posts (ids, embedded objects) and of activities (a
    Create stands for its object, a Like for nothing), item ids come in order, once."""
    url = "https://forum.example/topic/1"
    doc = {"@context": AS2, "id": url, "type": "OrderedCollection", "totalItems": "4",
           "attributedTo": "https://forum.example/uid/1",
           "orderedItems": ["https://forum.example/post/1",
                            {"id": "https://b.example/n/2", "type": "Note"},
                            {"id": "https://c.example/a/3", "type": "Create",
                             "actor": "https://c.example/u", "object": "https://c.example/n/3"},
                            {"id": "https://c.example/a/4", "type": "Like",
                             "actor": "https://c.example/u", "object": "https://c.example/n/3"},
                            "https://forum.example/post/1", "not a url"]}
    got = parse_collection(doc, normalizer=normalizer)
    assert (got.id, got.type, got.total_items, got.attributed_to, got.next) == (
        url, "OrderedCollection", 4, "https://forum.example/uid/1", None)
    assert got.items == ("https://forum.example/post/1", "https://b.example/n/2",
                         "https://c.example/n/3")
    page = parse_collection({"@context": AS2, "type": "OrderedCollectionPage",
                             "id": url + "?page=2", "partOf": url, "orderedItems": [],
                             "next": url + "?page=3"}, normalizer=normalizer)
    assert (page.items, page.next, page.total_items) == ((), url + "?page=3", None)


def test_a_collection_must_be_one(normalizer: Normalizer) -> None:
    """Given a Note where a collection is expected, parsing refuses it."""
    with pytest.raises(ProtocolError, match="not a collection"):
        parse_collection({"@context": AS2, "id": ALICE + "/n", "type": "Note"},
                         normalizer=normalizer)


def test_collection_items_are_bounded(normalizer: Normalizer) -> None:
    """Given a page listing 2000 items, at most 500 are read."""
    doc = {"@context": AS2, "id": "https://a.example/c", "type": "OrderedCollectionPage",
           "orderedItems": [f"https://a.example/n/{i}" for i in range(2000)]}
    assert len(parse_collection(doc, normalizer=normalizer).items) == 500
