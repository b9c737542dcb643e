"""Parsing raw AS2 into Incoming* values: every shape real servers send, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fedcomments.ap.jsonld import Normalizer
from fedcomments.ap.jsonld_contexts import AS2
from fedcomments.ap.parse import (
    parse_activity,
    parse_actor,
    parse_key_document,
    parse_object,
    visibility_of,
)
from fedcomments.ap.parse_values import MAX_CONTENT, MAX_NAME
from fedcomments.ap.types import PUBLIC, Attachment, Mention, PublicKey, Visibility
from fedcomments.errors import ProtocolError

ALICE = "https://social.example/users/alice"
FOLLOWERS = ALICE + "/followers"
POST = "https://blog.example/posts/hello"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----"
CONTEXT = [AS2, "https://w3id.org/security/v1", {"sensitive": "as:sensitive",
                                                 "Hashtag": "as:Hashtag"}]


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


def note(**fields: Any) -> dict[str, Any]:
    """A public reply by alice; ``fields`` override or add keys (None removes one)."""
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": ALICE + "/statuses/1",
        "type": "Note",
        "attributedTo": ALICE,
        "inReplyTo": POST,
        "content": "<p>hello</p>",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "published": "2024-05-01T10:00:00Z",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def create(obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Create wrapping ``obj`` (its own @context removed), from alice."""
    inner = {k: v for k, v in obj.items() if k != "@context"}
    doc: dict[str, Any] = {"@context": CONTEXT, "id": ALICE + "/statuses/1/activity",
                           "type": "Create", "actor": ALICE, "object": inner,
                           "to": inner.get("to"), "cc": inner.get("cc")}
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def actor(**fields: Any) -> dict[str, Any]:
    """A Mastodon-style Person for alice with one RSA key."""
    doc: dict[str, Any] = {
        "@context": CONTEXT, "id": ALICE, "type": "Person", "preferredUsername": "alice",
        "name": "Alice", "summary": "<p>bio</p>", "inbox": ALICE + "/inbox",
        "outbox": ALICE + "/outbox", "followers": FOLLOWERS,
        "endpoints": {"sharedInbox": "https://social.example/inbox"},
        "publicKey": {"id": ALICE + "#main-key", "owner": ALICE, "publicKeyPem": PEM},
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def obj_of(doc: dict[str, Any], normalizer: Normalizer, **kwargs: Any) -> Any:
    return parse_object(doc, normalizer=normalizer, **kwargs)


# -- addressing and visibility ---------------------------------------------------------------

@pytest.mark.parametrize("spelling", [PUBLIC, "as:Public", "Public"])
def test_every_spelling_of_public_in_to_is_public(normalizer: Normalizer, spelling: str) -> None:
    """Full IRI, compact and bare Public all mean public and read back as the full IRI."""
    obj = obj_of(note(to=[spelling]), normalizer)
    assert obj.to == (PUBLIC,)
    assert obj.visibility is Visibility.PUBLIC


def test_public_in_cc_is_unlisted(normalizer: Normalizer) -> None:
    """Mastodon's unlisted: followers in to, Public in cc."""
    obj = obj_of(note(to=[FOLLOWERS], cc=["as:Public"]), normalizer)
    assert obj.visibility is Visibility.UNLISTED


def test_to_and_cc_as_strings(normalizer: Normalizer) -> None:
    """GoToSocial and Kroeg send a single recipient as a string."""
    obj = obj_of(note(to=PUBLIC, cc=FOLLOWERS), normalizer)
    assert (obj.to, obj.cc) == ((PUBLIC,), (FOLLOWERS,))


def test_missing_to_and_cc_is_direct(normalizer: Normalizer) -> None:
    """No addressing at all: direct."""
    obj = obj_of(note(to=None, cc=None), normalizer)
    assert (obj.to, obj.cc, obj.visibility) == ((), (), Visibility.DIRECT)


def test_followers_collection_by_suffix_is_followers_only(normalizer: Normalizer) -> None:
    """A recipient ending in /followers makes a followers-only post."""
    obj = obj_of(note(to=[FOLLOWERS], cc=["https://other.example/users/bob"]), normalizer)
    assert obj.visibility is Visibility.FOLLOWERS


def test_followers_collection_by_known_url_is_followers_only(normalizer: Normalizer) -> None:
    """A followers URL without the usual suffix is recognised when the caller knows it."""
    fans = ALICE + "/fans"
    assert obj_of(note(to=[fans], cc=[]), normalizer).visibility is Visibility.DIRECT
    obj = obj_of(note(to=[fans], cc=[]), normalizer, followers_url=fans)
    assert obj.visibility is Visibility.FOLLOWERS


def test_direct_mention_only_is_direct(normalizer: Normalizer) -> None:
    """Only a person in to: direct."""
    obj = obj_of(note(to=["https://other.example/users/bob"], cc=[]), normalizer)
    assert obj.visibility is Visibility.DIRECT


def test_recipients_are_deduplicated_and_invalid_ones_dropped(normalizer: Normalizer) -> None:
    """Duplicates, embedded recipients and non-http entries are handled."""
    obj = obj_of(note(to=[PUBLIC, "as:Public", {"id": FOLLOWERS}, "mailto:x@y", FOLLOWERS]),
                 normalizer)
    assert obj.to == (PUBLIC, FOLLOWERS)


def test_visibility_values_are_the_stored_strings() -> None:
    """Downstream stores the enum's value."""
    assert [v.value for v in Visibility] == ["public", "unlisted", "followers", "direct"]
    assert visibility_of((), (PUBLIC,)) == "unlisted"


def test_announced_object_from_someone_else_ignores_sender_followers(
        normalizer: Normalizer) -> None:
    """The sender's followers URL says nothing about another author's post."""
    fans = "https://other.example/users/bob/fans"
    bob_note = note(id="https://other.example/notes/1", attributedTo="https://other.example/"
                    "users/bob", to=[fans], cc=[])
    announce = create(bob_note, type="Announce")
    activity = parse_activity(announce, normalizer=normalizer, followers_url=fans)
    assert activity.object is not None
    assert activity.object.visibility is Visibility.DIRECT


# -- references ----------------------------------------------------------------------------

def test_attributed_to_embedded_object(normalizer: Normalizer) -> None:
    """Fedify embeds the author object."""
    obj = obj_of(note(attributedTo={"id": ALICE, "type": "Person", "name": "alice"}),
                 normalizer)
    assert obj.attributed_to == ALICE


def test_attributed_to_list_prefers_the_person(normalizer: Normalizer) -> None:
    """PeerTube lists [channel Group, account Person] in some order: the Person wrote it."""
    channel = "https://tube.example/video-channels/main"
    obj = obj_of(note(attributedTo=[{"type": "Group", "id": channel},
                                    {"type": "Person", "id": ALICE}]), normalizer)
    assert obj.attributed_to == ALICE


def test_attributed_to_list_of_iris_takes_the_first(normalizer: Normalizer) -> None:
    """A list of plain IRIs: the first one."""
    obj = obj_of(note(attributedTo=[ALICE, "https://other.example/users/bob"]), normalizer)
    assert obj.attributed_to == ALICE


def test_in_reply_to_embedded_and_list(normalizer: Normalizer) -> None:
    """inReplyTo as an embedded object (Fedify) or a list: the id."""
    assert obj_of(note(inReplyTo={"id": POST, "type": "Article"}), normalizer).in_reply_to == POST
    assert obj_of(note(inReplyTo=[POST]), normalizer).in_reply_to == POST


def test_context_falls_back_to_conversation(normalizer: Normalizer) -> None:
    """FEP-7888 context first, else Mastodon's ostatus conversation (a tag: URI)."""
    tag = "tag:social.example,2024-05-01:objectId=1:objectType=Conversation"
    assert obj_of(note(conversation=tag), normalizer).context == tag
    both = note(context="https://social.example/contexts/1", conversation=tag)
    assert obj_of(both, normalizer).context == "https://social.example/contexts/1"


def test_actor_embedded_or_listed(normalizer: Normalizer) -> None:
    """Kroeg embeds the actor; Hubzilla embeds only its id; lists take the first."""
    follow = {"@context": CONTEXT, "id": ALICE + "#follow/1", "type": "Follow",
              "object": "https://blog.example/users/blog"}
    for value in ({"id": ALICE, "type": "Person"}, {"id": ALICE}, [ALICE]):
        assert parse_activity({**follow, "actor": value}, normalizer=normalizer).actor == ALICE


# -- ids are absolute http(s) URLs -----------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "message"), [
    ("id", None, "id is missing"),
    ("id", "/statuses/1", "id is not an absolute http"),
    ("id", "ftp://social.example/1", "id is not an absolute http"),
    ("id", "https://", "id is not an absolute http"),
    ("id", "https://social.example/a b", "id is not an absolute http"),
    ("inReplyTo", "javascript:alert(1)", "inReplyTo is not an absolute http"),
    ("attributedTo", "acct:alice@social.example", "attributedTo is not an absolute http"),
    ("type", None, "type is missing"),
])
def test_bad_ids_are_protocol_errors_naming_the_field(
        normalizer: Normalizer, field: str, value: Any, message: str) -> None:
    """Required or reference ids that are missing or not http(s) name the field."""
    with pytest.raises(ProtocolError, match=message):
        obj_of(note(**{field: value}) if value is not None else
               {k: v for k, v in note().items() if k != field}, normalizer)


def test_activity_without_actor_is_refused(normalizer: Normalizer) -> None:
    """An activity names its actor."""
    with pytest.raises(ProtocolError, match="actor is missing"):
        parse_activity(create(note(), actor=None), normalizer=normalizer)


def test_embedded_object_errors_name_the_object(normalizer: Normalizer) -> None:
    """An invalid embedded object is reported as the object's problem."""
    with pytest.raises(ProtocolError, match="object: id is missing"):
        parse_activity(create(note(id=None)), normalizer=normalizer)


def test_parse_object_refuses_activities(normalizer: Normalizer) -> None:
    """A fetched object that is an activity is refused."""
    with pytest.raises(ProtocolError, match="'Create' is an activity"):
        parse_object(create(note()), normalizer=normalizer)


def test_parse_activity_refuses_objects(normalizer: Normalizer) -> None:
    """A Note is not an activity."""
    with pytest.raises(ProtocolError, match="'Note' is not an activity type"):
        parse_activity(note(), normalizer=normalizer)


# -- activity types we do not handle ----------------------------------------------------------

QUOTE_TERMS = {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
               "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"}}
UNKNOWN_ACTIVITIES: dict[str, dict[str, Any]] = {
    # Mastodon 4.4+ when one of our posts is quoted (FEP-044f): the quote rides in instrument.
    "QuoteRequest": {
        "@context": [AS2, QUOTE_TERMS], "id": ALICE + "/quote_requests/1",
        "type": "QuoteRequest", "actor": ALICE, "object": POST,
        "instrument": {"id": ALICE + "/statuses/9", "type": "Note", "attributedTo": ALICE,
                       "content": "<p>look</p>", "quote": POST, "to": [PUBLIC]}},
    # An emoji reaction spelled by no vocabulary we bundle, with its emoji embedded.
    "EmojiReaction": {
        "@context": CONTEXT, "id": ALICE + "/reactions/1", "type": "EmojiReaction",
        "actor": ALICE, "object": POST, "content": ":blobcat:",
        "tag": [{"type": "Emoji", "name": ":blobcat:", "icon": {"url": 5}}]},
    # A chat wrapper whose embedded message has an id we could never use.
    "ChatMessage": {
        "@context": CONTEXT, "id": ALICE + "/chats/1", "type": "ChatMessage", "actor": ALICE,
        "object": {"id": "urn:uuid:1234", "type": "Note", "attributedTo": "acct:alice"}},
    "Bite": {"@context": CONTEXT, "id": ALICE + "/bites/1", "type": "Bite", "actor": ALICE,
             "target": POST, "to": ["https://blog.example/actor"]},
}
UNKNOWN_OBJECT_IDS = {"QuoteRequest": (POST,), "EmojiReaction": (POST,), "ChatMessage": (),
                      "Bite": ()}


@pytest.mark.parametrize("kind", UNKNOWN_ACTIVITIES)
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "pyld"])
def test_unhandled_activity_types_come_back_as_given(kind: str, fast_path: bool) -> None:
    """Given an activity of a type outside our list (with odd embedded objects), when parsed
    on either path, then its type is the one sent, with its id, actor and usable object ids,
    and nothing embedded is read."""
    parsed = parse_activity(UNKNOWN_ACTIVITIES[kind], normalizer=Normalizer(fast_path=fast_path))
    doc = UNKNOWN_ACTIVITIES[kind]
    assert (parsed.type, parsed.id, parsed.actor) == (kind, doc["id"], ALICE)
    assert parsed.object_ids == UNKNOWN_OBJECT_IDS[kind]
    assert parsed.object_id == next(iter(UNKNOWN_OBJECT_IDS[kind]), None)
    assert (parsed.object, parsed.inner, parsed.object_actor) == (None, None, None)


def test_unhandled_activity_keeps_target_and_addressing(normalizer: Normalizer) -> None:
    """Given a Bite aimed at our post and addressed to our actor, when parsed, then target
    and recipients are read like any activity's."""
    parsed = parse_activity(UNKNOWN_ACTIVITIES["Bite"], normalizer=normalizer)
    assert (parsed.target, parsed.to, parsed.cc) == (POST, ("https://blog.example/actor",), ())


@pytest.mark.parametrize(("change", "message"), [
    ({"id": None}, "id is missing"),
    ({"id": "urn:uuid:1"}, "id is not an absolute http"),
    ({"actor": None}, "actor is missing"),
    ({"actor": "acct:alice@social.example"}, "actor is not an absolute http"),
    ({"type": None}, "type is missing"),
    ({"type": "Tombstone"}, "'Tombstone' is not an activity type"),
    ({"type": "Person"}, "'Person' is not an activity type"),
    ({"type": "Question"}, "'Question' is not an activity type"),
], ids=["no-id", "urn-id", "no-actor", "acct-actor", "no-type", "tombstone", "person",
        "question"])
def test_malformed_unhandled_activities_are_refused(normalizer: Normalizer,
                                                    change: dict[str, Any], message: str) -> None:
    """Given a QuoteRequest without a usable id, actor or type, or typed as an object or an
    actor, when parsed, then ProtocolError naming the problem (the inbox answers 400)."""
    doc = {**UNKNOWN_ACTIVITIES["QuoteRequest"], **change}
    with pytest.raises(ProtocolError, match=message):
        parse_activity({k: v for k, v in doc.items() if v is not None}, normalizer=normalizer)


def test_parse_actor_refuses_non_actors(normalizer: Normalizer) -> None:
    """A Note is not an actor."""
    with pytest.raises(ProtocolError, match="'Note' is not an actor type"):
        parse_actor(note(), normalizer=normalizer)


def test_nesting_depth_is_bounded(normalizer: Normalizer) -> None:
    """Announce of Announce of … ten deep is refused."""
    doc: dict[str, Any] = note()
    for i in range(10):
        doc = {"@context": CONTEXT, "id": f"{ALICE}/announces/{i}", "type": "Announce",
               "actor": ALICE, "object": {k: v for k, v in doc.items() if k != "@context"}}
    with pytest.raises(ProtocolError, match="nest deeper than 8"):
        parse_activity(doc, normalizer=normalizer)


# -- content -----------------------------------------------------------------------------------

def test_content_map_only_takes_a_language(normalizer: Normalizer) -> None:
    """Without content, the contentMap gives both text and language (first tag in order)."""
    obj = obj_of(note(content=None, contentMap={"pt-BR": "<p>oi</p>", "en": "<p>hi</p>"}),
                 normalizer)
    assert (obj.content, obj.language) == ("<p>hi</p>", "en")


def test_content_language_comes_from_the_matching_map_entry(normalizer: Normalizer) -> None:
    """Mastodon sends content and contentMap {lang: same}; the language is that key."""
    obj = obj_of(note(content="<p>oi</p>", contentMap={"en": "<p>hi</p>", "pt-br": "<p>oi</p>"}),
                 normalizer)
    assert (obj.content, obj.language) == ("<p>oi</p>", "pt-BR")


def test_misskey_content_is_the_fallback_as_escaped_text(normalizer: Normalizer) -> None:
    """MFM source is shown as plain text when no HTML content came."""
    obj = obj_of(note(content=None, _misskey_content="**hi** <b>x</b>\nhttps://x.example/"),
                 normalizer)
    assert obj.content == ('<p>**hi** &lt;b&gt;x&lt;/b&gt;<br><a href="https://x.example/" '
                           'rel="nofollow noopener noreferrer ugc">https://x.example/</a></p>')


def test_no_content_at_all_is_empty(normalizer: Normalizer) -> None:
    """A Tombstone has no content."""
    obj = obj_of(note(type="Tombstone", content=None), normalizer)
    assert (obj.content, obj.type) == ("", "Tombstone")


def test_summary_is_a_plain_text_content_warning(normalizer: Normalizer) -> None:
    """HTML in a summary is reduced to text; a CW makes the post sensitive."""
    obj = obj_of(note(summary="<p>spoilers &amp; <b>more</b></p>"), normalizer)
    assert (obj.summary, obj.sensitive) == ("spoilers & more", True)


def test_empty_summary_is_no_warning(normalizer: Normalizer) -> None:
    """GoToSocial sends "summary": "" and "sensitive": false."""
    obj = obj_of(note(summary="", sensitive=False), normalizer)
    assert (obj.summary, obj.sensitive) == (None, False)


def test_nsfw_hashtag_is_sensitive(normalizer: Normalizer) -> None:
    """Pleroma marks #nsfw posts sensitive."""
    obj = obj_of(note(tag=[{"type": "Hashtag", "name": "#NSFW"}]), normalizer)
    assert obj.sensitive is True


def test_content_is_capped(normalizer: Normalizer) -> None:
    """Oversized content is cut to MAX_CONTENT; names to MAX_NAME."""
    obj = obj_of(note(content="x" * (MAX_CONTENT + 10), name="n" * (MAX_NAME + 10)), normalizer)
    assert (len(obj.content), len(obj.name or "")) == (MAX_CONTENT, MAX_NAME)


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ("yesterday", None),
])
def test_published_shapes(normalizer: Normalizer, value: str, expected: datetime | None) -> None:
    """Fractions of any length, Z or offset, no zone (UTC); junk is None."""
    assert obj_of(note(published=value), normalizer).published == expected


# -- tags, attachments, links -----------------------------------------------------------------

def test_single_tag_object(normalizer: Normalizer) -> None:
    """Kroeg and GoToSocial send one tag as an object, not a list."""
    obj = obj_of(note(tag={"type": "Mention", "href": "https://other.example/users/bob",
                           "name": "@bob@other.example"}), normalizer)
    assert obj.mentions == (Mention("https://other.example/users/bob", "@bob@other.example"),)


def test_hashtags_lose_the_hash_and_duplicates(normalizer: Normalizer) -> None:
    """#Tag and #tag are one hashtag; emoji tags are ignored."""
    obj = obj_of(note(tag=[{"type": "Hashtag", "name": "#Cats"},
                           {"type": "Hashtag", "name": "#cats"},
                           {"type": "Emoji", "name": ":blob:"},
                           {"type": "Hashtag", "name": "dogs"}]), normalizer)
    assert obj.hashtags == ("Cats", "dogs")


def test_attachments(normalizer: Normalizer) -> None:
    """url as string, Link or list; alt text from name (or Owncast's content)."""
    obj = obj_of(note(attachment=[
        {"type": "Document", "mediaType": "image/png", "url": "https://cdn.example/a.png",
         "name": "a cat"},
        {"type": "Image", "url": {"type": "Link", "href": "https://cdn.example/b.gif",
                                  "mediaType": "image/gif"}, "content": "preview"},
        {"type": "Video", "url": [{"type": "Link", "href": "javascript:x"},
                                  {"type": "Link", "href": "https://cdn.example/c.mp4"}]},
        {"type": "Document", "name": "no url"},
        "https://cdn.example/d.png",
    ]), normalizer)
    assert obj.attachments == (
        Attachment("https://cdn.example/a.png", "image/png", "a cat", "Document"),
        Attachment("https://cdn.example/b.gif", "image/gif", "preview", "Image"),
        Attachment("https://cdn.example/c.mp4", None, None, "Video"),
    )


EMOJI_CONTEXT = [*CONTEXT, {"toot": "http://joinmastodon.org/ns#", "Emoji": "toot:Emoji"}]


def emoji(name: Any, url: Any) -> dict[str, Any]:
    return {"id": "https://social.example/emojis/1", "type": "Emoji", "name": name,
            "icon": {"type": "Image", "mediaType": "image/png", "url": url}}


def test_custom_emoji_of_notes_and_actors(normalizer: Normalizer) -> None:
    """Emoji tags (Mastodon's ":code:" names, Misskey's, bare ones) give shortcode and image;
    a bad shortcode, a non-http icon or a repeated shortcode is dropped; actors too."""
    tags = [emoji(":blobcat:", "https://cdn.example/blobcat.png"),
            emoji("ablobfox_bounce", {"type": "Link", "href": "https://cdn.example/fox.gif"}),
            emoji(":blob cat:", "https://cdn.example/x.png"),
            emoji(":evil:", "javascript:alert(1)"),
            emoji(":blobcat:", "https://cdn.example/other.png"),
            {"type": "Emoji", "name": ":nourl:"},
            {"type": "Hashtag", "name": "#cats"}]
    obj = obj_of(note(**{"@context": EMOJI_CONTEXT, "tag": tags}), normalizer)
    assert [(e.shortcode, e.url) for e in obj.emojis] == [
        ("blobcat", "https://cdn.example/blobcat.png"),
        ("ablobfox_bounce", "https://cdn.example/fox.gif")]
    person = parse_actor(actor(**{"@context": EMOJI_CONTEXT, "name": "Alice :blobcat:",
                                  "tag": [tags[0]]}), normalizer=normalizer)
    assert [(e.shortcode, e.url) for e in person.emojis] == [
        ("blobcat", "https://cdn.example/blobcat.png")]


def test_url_prefers_the_html_link(normalizer: Normalizer) -> None:
    """PeerTube lists several Links; the text/html one is the page."""
    obj = obj_of(note(url=[{"type": "Link", "mediaType": "video/mp4",
                            "href": "https://tube.example/v.mp4"},
                           {"type": "Link", "mediaType": "text/html",
                            "href": "https://tube.example/w/1"}]), normalizer)
    assert obj.url == "https://tube.example/w/1"


def test_quote_url_spellings(normalizer: Normalizer) -> None:
    """FEP-044f quote wins over quoteUrl, _misskey_quote and Fedibird's quoteUri."""
    quoted = "https://other.example/notes/9"
    for key in ("quote", "quoteUrl", "_misskey_quote", "quoteUri"):
        assert obj_of(note(**{key: quoted}), normalizer).quote_url == quoted
    both = note(quote=quoted, quoteUrl="https://other.example/notes/8")
    assert obj_of(both, normalizer).quote_url == quoted


# -- activities -------------------------------------------------------------------------------

def test_create_embeds_the_object(normalizer: Normalizer) -> None:
    """Create{Note}: object parsed, object_id set."""
    activity = parse_activity(create(note()), normalizer=normalizer)
    assert (activity.type, activity.actor, activity.object_id) == \
        ("Create", ALICE, ALICE + "/statuses/1")
    assert activity.object is not None and activity.object.in_reply_to == POST
    assert activity.inner is None


def test_undo_embeds_an_activity(normalizer: Normalizer) -> None:
    """Undo{Follow}: the inner activity is parsed."""
    follow = {"id": ALICE + "#follows/1", "type": "Follow", "actor": ALICE,
              "object": "https://blog.example/users/blog"}
    undo = {"@context": CONTEXT, "id": ALICE + "#follows/1/undo", "type": "Undo",
            "actor": ALICE, "object": follow}
    activity = parse_activity(undo, normalizer=normalizer)
    assert activity.inner is not None
    assert (activity.inner.type, activity.inner.object_id) == \
        ("Follow", "https://blog.example/users/blog")
    assert activity.object is None


def test_undo_with_only_the_id(normalizer: Normalizer) -> None:
    """Mastodon may undo by id only, or embed {id} without type: both are references."""
    for value in (ALICE + "#likes/2", {"id": ALICE + "#likes/2"}):
        undo = {"@context": CONTEXT, "id": ALICE + "#undo", "type": "Undo", "actor": ALICE,
                "object": value}
        activity = parse_activity(undo, normalizer=normalizer)
        assert (activity.object_id, activity.inner, activity.object) == \
            (ALICE + "#likes/2", None, None)


def test_update_of_an_actor(normalizer: Normalizer) -> None:
    """Update{Person} carries the actor as object_actor."""
    update = {"@context": CONTEXT, "id": ALICE + "#updates/1", "type": "Update",
              "actor": ALICE, "object": {k: v for k, v in actor().items() if k != "@context"}}
    activity = parse_activity(update, normalizer=normalizer)
    assert activity.object_actor is not None
    assert activity.object_actor.preferred_username == "alice"


def test_flag_lists_several_objects(normalizer: Normalizer) -> None:
    """A report names the account and statuses, with a comment."""
    flag = {"@context": CONTEXT, "id": "https://mod.example/flags/1", "type": "Flag",
            "actor": "https://mod.example/actor", "content": "spam",
            "object": [ALICE, ALICE + "/statuses/1", ALICE + "/statuses/2"]}
    activity = parse_activity(flag, normalizer=normalizer)
    assert activity.object_ids == (ALICE, ALICE + "/statuses/1", ALICE + "/statuses/2")
    assert (activity.object_id, activity.content) == (ALICE, "spam")


def test_misskey_like_reaction(normalizer: Normalizer) -> None:
    """Misskey's Like carries the reaction in content and _misskey_reaction."""
    like = {"@context": CONTEXT, "id": "https://mk.example/likes/1", "type": "Like",
            "actor": ALICE, "object": POST, "_misskey_reaction": "🍮"}
    assert parse_activity(like, normalizer=normalizer).content == "🍮"


def test_default_normalizer_is_used_without_one() -> None:
    """Called without a normaliser, parse still normalises (slower, same result)."""
    assert parse_object(note()) == parse_object(note(), normalizer=Normalizer())


# -- actors and keys ----------------------------------------------------------------------------

def test_actor_fields(normalizer: Normalizer) -> None:
    """A Mastodon Person: names, links, shared inbox, key, approval flag."""
    person = parse_actor(actor(manuallyApprovesFollowers=True, icon=[
        {"type": "Image", "url": "https://cdn.example/avatar.png"}],
        url={"type": "Link", "href": "https://social.example/@alice"},
        published="2020-01-01T00:00:00Z"), normalizer=normalizer)
    assert (person.preferred_username, person.name, person.summary) == \
        ("alice", "Alice", "<p>bio</p>")
    assert (person.url, person.icon) == ("https://social.example/@alice",
                                         "https://cdn.example/avatar.png")
    assert (person.inbox, person.shared_inbox, person.followers) == \
        (ALICE + "/inbox", "https://social.example/inbox", FOLLOWERS)
    assert person.public_keys == (PublicKey(ALICE + "#main-key", ALICE, PEM),)
    assert person.manually_approves is True
    assert person.published == datetime(2020, 1, 1, tzinfo=UTC)


def test_endpoints_as_an_iri_has_no_shared_inbox(normalizer: Normalizer) -> None:
    """Kroeg's endpoints is an IRI: no shared inbox."""
    assert parse_actor(actor(endpoints=ALICE + "#endpoints"),
                       normalizer=normalizer).shared_inbox is None


def test_multikeys_from_assertion_method(normalizer: Normalizer) -> None:
    """Fedify lists Ed25519 Multikeys; the multibase is kept, pem is empty."""
    doc = actor(assertionMethod=[{"id": ALICE + "#ed", "type": "Multikey", "controller": ALICE,
                                  "publicKeyMultibase": "z6MkrQBuKmicSX9itTfgLBdWm"}])
    doc["@context"] = [*CONTEXT, "https://w3id.org/security/multikey/v1"]
    keys = parse_actor(doc, normalizer=normalizer).public_keys
    assert keys == (PublicKey(ALICE + "#main-key", ALICE, PEM),
                    PublicKey(ALICE + "#ed", ALICE, "", "z6MkrQBuKmicSX9itTfgLBdWm"))


def test_keys_without_usable_material_or_owner_are_dropped(normalizer: Normalizer) -> None:
    """No PEM, a bad owner or a non-http id: that key is skipped, the actor still parses."""
    keys = [{"id": ALICE + "#a", "owner": ALICE, "publicKeyPem": "not a pem"},
            {"id": ALICE + "#b", "owner": "acct:alice", "publicKeyPem": PEM},
            {"id": "urn:key", "owner": ALICE, "publicKeyPem": PEM},
            {"id": ALICE + "#c", "publicKeyPem": PEM}]
    person = parse_actor(actor(publicKey=keys), normalizer=normalizer)
    assert person.public_keys == (PublicKey(ALICE + "#c", ALICE, PEM),)


def test_key_document_that_is_the_actor(normalizer: Normalizer) -> None:
    """Mastodon's keyId URL serves the actor; the key is picked by its id."""
    person, key = parse_key_document(actor(), key_id=ALICE + "#main-key", normalizer=normalizer)
    assert person is not None and person.id == ALICE
    assert key == PublicKey(ALICE + "#main-key", ALICE, PEM)
    _, missing = parse_key_document(actor(), key_id=ALICE + "#other", normalizer=normalizer)
    assert missing is None


def test_standalone_key_document(normalizer: Normalizer) -> None:
    """GoToSocial-style key document with an owner."""
    doc = {"@context": CONTEXT, "id": ALICE + "/main-key", "type": "CryptographicKey",
           "owner": ALICE, "publicKeyPem": PEM}
    assert parse_key_document(doc, normalizer=normalizer) == \
        (None, PublicKey(ALICE + "/main-key", ALICE, PEM))


def test_standalone_key_without_owner_is_refused(normalizer: Normalizer) -> None:
    """A key that names no owner cannot be tied to an actor."""
    doc = {"@context": CONTEXT, "id": ALICE + "/main-key", "publicKeyPem": PEM}
    with pytest.raises(ProtocolError, match="needs an http"):
        parse_key_document(doc, normalizer=normalizer)


def test_key_document_of_another_kind_is_refused(normalizer: Normalizer) -> None:
    """A Note is neither an actor nor a key."""
    with pytest.raises(ProtocolError, match="neither an actor nor a public key"):
        parse_key_document(note(), normalizer=normalizer)
