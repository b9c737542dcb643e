"""Every real-world sample document parses, and the fast path agrees with pyld on each."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fedcomments.ap.jsonld import Normalizer
from fedcomments.ap.parse import parse_activity, parse_actor, parse_object
from fedcomments.ap.parse_values import ACTIVITY_TYPES, ACTOR_TYPES
from fedcomments.ap.types import (
    PUBLIC,
    Attachment,
    IncomingActivity,
    IncomingActor,
    IncomingObject,
    Mention,
    Visibility,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
if not (SAMPLES / "SOURCES.md").is_file():
    pytest.skip(f"sample documents not found at {SAMPLES}", allow_module_level=True)

# The WordPress plugin's fixtures hold this placeholder where the blog post URL goes.
POST_URL = "https://blog.example/posts/hello"
# Documents that need pyld: Kroeg's Announce uses the key "as:sensitive".
NEEDS_PYLD = {"kroeg/announce-inline-actor.json"}


def _sources() -> dict[str, str]:
    """file → type column of the table in SOURCES.md."""
    rows = re.findall(r"^\| ([\w./-]+\.json) \| [^|]+ \| ([^|]+?) \|",
                      (SAMPLES / "SOURCES.md").read_text(encoding="utf-8"), re.MULTILINE)
    return dict(rows)


SOURCES = _sources()
FILES = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*.json"))
Parser = Callable[..., IncomingActivity | IncomingObject | IncomingActor]


def load(name: str) -> dict[str, Any]:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    return json.loads(text.replace("{{LOCAL_POST_URL}}", POST_URL))


def parser_for(name: str) -> Parser:
    """Actors, activities or bare objects, by the type SOURCES.md lists ("Create{Note}")."""
    kind = SOURCES[name].split("{")[0].strip()
    if kind in ACTOR_TYPES:
        return parse_actor
    return parse_activity if kind in ACTIVITY_TYPES else parse_object


@pytest.fixture(scope="module")
def fast() -> Normalizer:
    return Normalizer()


@pytest.fixture(scope="module")
def slow() -> Normalizer:
    return Normalizer(fast_path=False)


def parsed(name: str, normalizer: Normalizer) -> Any:
    return parser_for(name)(load(name), normalizer=normalizer)


def test_sources_list_every_sample() -> None:
    """SOURCES.md and the directory agree, so every sample gets a parser."""
    assert len(FILES) == 60
    assert set(SOURCES) == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_sample_parses_identically_on_both_paths(
        name: str, fast: Normalizer, slow: Normalizer) -> None:
    """Given a real document, the fast path and pyld give the same parse result."""
    assert parsed(name, fast) == parsed(name, slow)


@pytest.mark.parametrize("name", FILES)
def test_sample_takes_the_expected_path(name: str, fast: Normalizer) -> None:
    """All samples but Kroeg's compact-IRI key take the fast path."""
    assert (fast.normalize_fast(load(name)) is None) == (name in NEEDS_PYLD)


def test_mastodon_followers_only(fast: Normalizer) -> None:
    """A followers-only Mastodon post is FOLLOWERS, addressed to the followers alone."""
    activity = parsed("mastodon/create-note-followers-only.json", fast)
    assert activity.object.visibility is Visibility.FOLLOWERS
    assert activity.object.to == ("https://fedi.aeracode.org/users/testmover/followers",)
    assert activity.object.context == \
        "tag:aeracode.org,2023-07-22:objectId=252393:objectType=Conversation"


def test_mastodon_content_map_only(fast: Normalizer) -> None:
    """A Note with only contentMap still has content, and its language."""
    obj = parsed("mastodon/create-note-contentmap-only.json", fast).object
    assert obj.content.startswith('<p><span class="h-card"><a href="http://localtesting')
    assert obj.language == "en"


def test_mastodon_content_warning(fast: Normalizer) -> None:
    """The CW sample has its summary, is sensitive, and keeps its #NSFW hashtag."""
    obj = parsed("mastodon/create-note-sensitive-cw.json", fast).object
    assert (obj.summary, obj.sensitive, obj.hashtags) == ("cw", True, ("NSFW",))


def test_mastodon_hashtag(fast: Normalizer) -> None:
    """The hashtag sample has #moo and the mention of lain."""
    obj = parsed("mastodon/create-note-hashtag.json", fast).object
    assert obj.hashtags == ("moo",)
    assert obj.mentions == (Mention("http://localtesting.pleroma.lol/users/lain",
                                    "@lain@localtesting.pleroma.lol"),)


def test_mastodon_unlisted_with_photos(fast: Normalizer) -> None:
    """Public in cc is unlisted; both photos keep their alt text."""
    obj = parsed("mastodon/note-tag-photo-cw.json", fast)
    assert obj.visibility is Visibility.UNLISTED
    assert obj.summary == "Testing post, pictures of cats"
    assert len(obj.attachments) == 2
    assert obj.attachments[0].name == "Two cats standing in a box"


def test_misskey_quote(fast: Normalizer) -> None:
    """Misskey's quote has its quote_url."""
    obj = parsed("misskey/note-quote.json", fast)
    assert obj.quote_url == "https://example.com/objects/43479e20-c0f8-4f49-bf7f-13fab8234924"


def test_misskey_io_quote(fast: Normalizer) -> None:
    """misskey.io's old namespace still gives the quote."""
    obj = parsed("misskey/note-quote-post.json", fast)
    assert obj.quote_url == "https://misskey.io/notes/8vs6wxufd0"


def test_fedibird_quote(fast: Normalizer) -> None:
    """Fedibird's quote (quoteUri) and its unlisted addressing."""
    obj = parsed("fedibird/note-quote.json", fast)
    assert obj.quote_url == "https://example.com/objects/43479e20-c0f8-4f49-bf7f-13fab8234924"
    assert obj.visibility is Visibility.UNLISTED


def test_misskey_like_reaction(fast: Normalizer) -> None:
    """The Misskey Like carries its emoji reaction."""
    activity = parsed("misskey/like-reaction.json", fast)
    assert (activity.type, activity.content) == ("Like", ":pudding:")


def test_kroeg_single_tag(fast: Normalizer) -> None:
    """Kroeg's tag is one object, not a list; the author is an embedded actor."""
    obj = parsed("kroeg/create-note-tag-single.json", fast).object
    assert obj.hashtags == ("test",)
    assert obj.attributed_to == "https://puckipedia.com/"


def test_kroeg_announce_with_inline_actor(slow: Normalizer) -> None:
    """Kroeg's Announce embeds its actor; the announced note keeps its own audience."""
    activity = parsed("kroeg/announce-inline-actor.json", slow)
    assert activity.actor == "https://puckipedia.com/"
    assert activity.object.visibility is Visibility.PUBLIC


def test_gotosocial_reply(fast: Normalizer) -> None:
    """GoToSocial's reply points at the blog post and mentions someone."""
    obj = parsed("gotosocial/create-reply.json", fast).object
    assert obj.in_reply_to == POST_URL
    assert obj.mentions == (Mention("https://example.com/?author=0", "@someone@example.com"),)
    assert (obj.language, obj.visibility, obj.sensitive) == ("en", Visibility.PUBLIC, False)


def test_akkoma_reply(fast: Normalizer) -> None:
    """Akkoma's edited reply: language from contentMap, updated time, context."""
    obj = parsed("pleroma-akkoma/akkoma-create-reply-edited.json", fast).object
    assert (obj.in_reply_to, obj.language, obj.sensitive) == (POST_URL, "en", True)
    assert obj.context == "https://example.com/context/12345"
    assert obj.updated is not None and obj.updated.isoformat() == "2026-02-05T16:00:25.855603+00:00"


def test_pleroma_reply_has_no_language(fast: Normalizer) -> None:
    """Pleroma's "@language": "und" is no language at all."""
    obj = parsed("pleroma-akkoma/note-reply.json", fast)
    assert obj.language is None
    assert obj.in_reply_to == "https://mk.absturztau.be/notes/93e7nm8wqg"


def test_fedify_embedded_reply(fast: Normalizer) -> None:
    """Fedify embeds the author and the replied-to post; attachment alt text is kept."""
    obj = parsed("fedify/create-reply-embedded.json", fast).object
    assert (obj.attributed_to, obj.in_reply_to) == \
        ("http://127.0.0.1:9101/users/alice", "http://127.0.0.1:9102/posts/1")
    assert obj.attachments == (
        Attachment("http://127.0.0.1:9101/img.png", "image/png", "alt text", "Document"),)
    assert (obj.summary, obj.sensitive) == ("CW: test", True)


def test_fedify_actor_keys(fast: Normalizer) -> None:
    """Fedify's actor has an RSA publicKey and two Multikeys."""
    actor = parsed("fedify/actor.json", fast)
    assert [k.id.split("#")[1] for k in actor.public_keys] == \
        ["main-key", "multikey-1", "multikey-2"]
    assert actor.public_keys[0].pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert actor.public_keys[2].multibase == "z6MkrQBuKmicSX9itTfgLBdWmjQny2f4KKEnmkaaPQaLV3J2"
    assert actor.public_keys[2].pem == ""


def test_undo_follow(fast: Normalizer) -> None:
    """Mastodon's Undo{Follow} carries the Follow."""
    activity = parsed("mastodon/undo-follow.json", fast)
    assert activity.inner is not None and activity.inner.type == "Follow"


def test_update_person(fast: Normalizer) -> None:
    """Mastodon's Update{Person} carries the new profile."""
    activity = parsed("mastodon/update-person.json", fast)
    assert activity.object_actor is not None and activity.object_actor.name == "gargle"


def test_peertube_video(fast: Normalizer) -> None:
    """PeerTube: the Person among attributedTo, the text/html url among many Links."""
    obj = parsed("peertube/create-video.json", fast).object
    assert obj.attributed_to == "https://framatube.org/accounts/framasoft"
    assert obj.url == "https://framatube.org/videos/watch/6050732a-8a7a-43d4-a6cd-809525a1d206"
    assert obj.visibility is Visibility.PUBLIC


def test_owncast_note(fast: Normalizer) -> None:
    """Owncast: no @context, duplicate hashtags, alt text in content."""
    obj = parsed("owncast/note-attachment.json", fast)
    assert obj.hashtags == ("owncast", "streaming")
    assert obj.attachments[0].name == "Live stream preview"
    assert obj.to == (PUBLIC,)


def test_misskey_without_context(fast: Normalizer) -> None:
    """A Misskey note without @context reads with the AS2 context assumed."""
    obj = parsed("misskey/note-mfm-misskey-content.json", fast)
    assert obj.hashtags == ("dancedance",)
    assert obj.content.startswith('<p><a href="https://akkoma.local.live/users/akkoma_user"')


def test_mastodon_delete_without_as2_context(fast: Normalizer) -> None:
    """Mastodon's Delete whose context omits AS2 still reads (AS2 is implied)."""
    activity = parsed("mastodon/delete-note.json", fast)
    assert activity.object is not None and activity.object.type == "Tombstone"
