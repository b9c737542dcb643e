"""Frozen results of parsing incoming ActivityStreams documents (built by ap/parse.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


class Visibility(StrEnum):
    """Who may see an object, derived from its addressing (to/cc)."""

    PUBLIC = "public"
    UNLISTED = "unlisted"
    FOLLOWERS = "followers"
    DIRECT = "direct"


@dataclass(frozen=True)
class Attachment:
    """A media attachment, kept as a link; ``name`` is the alt text."""

    url: str
    media_type: str | None
    name: str | None
    type: str


@dataclass(frozen=True)
class Emoji:
    """A custom emoji: ``:shortcode:`` in the text stands for the image at ``url``."""

    shortcode: str
    url: str


@dataclass(frozen=True)
class Mention:
    """A ``Mention`` tag: the mentioned actor's id and its display handle."""

    href: str
    name: str | None


@dataclass(frozen=True)
class IncomingObject:
    """A content object (Note, Article, Page, Question, Tombstone, Video …).

    ``content`` is the sender's raw HTML (sanitise before showing it); ``summary`` is the
    content warning as plain text; ``to`` and ``cc`` spell Public as :data:`PUBLIC`.
    """

    id: str
    type: str
    attributed_to: str | None
    in_reply_to: str | None
    context: str | None
    content: str
    language: str | None
    summary: str | None
    sensitive: bool
    name: str | None
    url: str | None
    published: datetime | None
    updated: datetime | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    visibility: Visibility
    mentions: tuple[Mention, ...]
    hashtags: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    quote_url: str | None
    emojis: tuple[Emoji, ...] = ()
    #: What it says of its replies collection (read in full only when backfilling).
    replies: RepliesRef | None = None


@dataclass(frozen=True)
class RepliesRef:
    """An object's `replies`: the collection's id, the size it gives (totalItems, when it
    says) and how many items it lists inline (Mastodon embeds a first page)."""

    id: str | None
    total_items: int | None
    listed: int


@dataclass(frozen=True)
class IncomingCollection:
    """A collection or one page of it, read as a listing: the item ids it holds here and
    where the listing continues.

    An embedded first page is read into the collection (its items, its ``next``); a first
    page given by id is ``next``. A listed activity (FEP-f228's collection of activities)
    stands for its object.
    """

    id: str | None
    type: str
    attributed_to: str | None
    total_items: int | None
    items: tuple[str, ...]
    next: str | None


@dataclass(frozen=True)
class IncomingActivity:
    """An activity; its object is an id, an embedded object, actor or activity.

    ``object_ids`` lists every object id (a ``Flag`` names several); ``object_id`` is the
    first. ``content`` carries a Misskey/Pleroma reaction or a Flag's comment.
    """

    id: str
    type: str
    actor: str
    object_id: str | None
    object: IncomingObject | None
    inner: IncomingActivity | None
    target: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    published: datetime | None
    content: str | None
    object_ids: tuple[str, ...]
    object_actor: IncomingActor | None = None


@dataclass(frozen=True)
class PublicKey:
    """A public key of an actor: RSA as ``pem``, or a Multikey as ``multibase``.

    Exactly one of ``pem`` and ``multibase`` is set; ``pem`` is "" for a Multikey.
    """

    id: str
    owner: str
    pem: str
    multibase: str | None = None


@dataclass(frozen=True)
class IncomingActor:
    """An actor document (Person, Service, Application, Group, Organization).

    ``summary`` is the sender's raw HTML; ``name`` and ``preferred_username`` are raw text.
    """

    id: str
    type: str
    preferred_username: str | None
    name: str | None
    summary: str | None
    url: str | None
    icon: str | None
    inbox: str | None
    shared_inbox: str | None
    outbox: str | None
    followers: str | None
    public_keys: tuple[PublicKey, ...]
    manually_approves: bool
    published: datetime | None
    emojis: tuple[Emoji, ...] = ()
    #: FEP-5feb / Mastodon's flags; None when the document does not say.
    indexable: bool | None = None
    discoverable: bool | None = None
    #: Hashtags of the profile, case-folded, without "#": its Hashtag tags and the ones
    #: written in its summary (where #nobot and #noblog usually are).
    hashtags: tuple[str, ...] = ()
