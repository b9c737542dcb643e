"""Domain types shared by services, store and adapters; plain frozen data, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from fedcomments.names import handle


class CommentStatus(enum.StrEnum):
    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    #: A tombstone kept so that its replies stay threaded; shown as "deleted".
    DELETED = "deleted"


class Origin(enum.StrEnum):
    REMOTE = "remote"  # a fediverse reply
    LOCAL = "local"  # a reader's comment from the form
    OWNER = "owner"  # the blog owner's answer, published by the blog actor


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"
    FOLLOWERS = "followers"
    DIRECT = "direct"

    @property
    def is_public(self) -> bool:
        return self in (Visibility.PUBLIC, Visibility.UNLISTED)


class ReactionType(enum.StrEnum):
    LIKE = "like"
    ANNOUNCE = "announce"


class JobKind(enum.StrEnum):
    """What a delivery job carries; every kind shares the queue's leases and retries."""

    ACTIVITY = "activity"  # an ActivityPub activity to an inbox
    WEBHOOK = "webhook"  # an event POSTed to the owner's webhook
    MAIL = "mail"  # a message to the SMTP server
    SPAM = "spam"  # a call to the spam service (check, or report ham/spam)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    GONE = "gone"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Post:
    id: int
    slug: str
    permalink: str
    ap_id: str
    title: str
    summary: str
    content: str
    tags: tuple[str, ...]
    image: str | None
    published_at: datetime
    updated_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None = None
    federated_at: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True)
class PostInput:
    """What a caller gives to register or update a post (CLI, admin API, feed)."""

    permalink: str
    title: str
    summary: str = ""
    content: str = ""
    tags: tuple[str, ...] = ()
    image: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class RemoteActor:
    id: int
    ap_id: str
    domain: str
    type: str
    username: str | None
    name: str | None
    summary: str | None
    url: str | None
    icon: str | None
    inbox: str | None
    shared_inbox: str | None
    followers_url: str | None
    fetched_at: datetime
    trusted: bool = False
    #: FEP-5feb: False asks search engines not to index what they write; None unknown.
    indexable: bool | None = None
    #: Mastodon's discoverable flag; None unknown.
    discoverable: bool | None = None
    #: Hashtags of their profile (case-folded, without "#"), where #nobot is written.
    profile_tags: tuple[str, ...] = ()

    @property
    def handle(self) -> str:
        """@name@host, or the actor's id when its name cannot be a handle (names.handle)."""
        return handle(self.username, self.domain) or self.ap_id

    @property
    def display_name(self) -> str:
        return self.name or self.username or self.ap_id


@dataclass(frozen=True)
class Attachment:
    url: str
    media_type: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ImportKey:
    """Where an imported comment came from: the system (wordpress, disqus, isso,
    fedcomments), the site it served there and the comment's id in it."""

    source: str
    site: str
    id: str


@dataclass(frozen=True)
class Comment:
    id: int
    post_id: int
    parent_id: int | None
    ap_id: str | None
    origin: Origin
    visibility: Visibility
    status: CommentStatus
    content: str
    published_at: datetime
    created_at: datetime
    actor: RemoteActor | None = None
    author_name: str | None = None
    author_website: str | None = None
    summary: str | None = None
    sensitive: bool = False
    language: str | None = None
    url: str | None = None
    in_reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[str, ...] = ()
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    #: Set on comments brought in by `fedcomments import`.
    imported: ImportKey | None = None
    #: Why a reply its author made public is kept for the owner only (their consent);
    #: `visibility` is then private and `addressed` the audience they gave it.
    withheld: str | None = None
    addressed: Visibility | None = None

    @property
    def is_public(self) -> bool:
        return self.visibility.is_public and self.status is CommentStatus.APPROVED

    @property
    def audience(self) -> Visibility:
        """The audience its author addressed it to (withheld or not)."""
        return self.addressed or self.visibility


@dataclass(frozen=True)
class Follower:
    actor: RemoteActor
    follow_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class DomainBlock:
    domain: str
    reason: str
    created_at: datetime
    keep_content: bool = False
    removed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ActorBlock:
    ap_id: str
    reason: str
    created_at: datetime
    keep_content: bool = False
    removed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryJob:
    id: int
    activity_id: str
    inbox: str
    host: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    body: bytes = b""
    last_status: int | None = None
    last_error: str | None = None
    finished_at: datetime | None = None
    kind: JobKind = JobKind.ACTIVITY


@dataclass(frozen=True)
class HostState:
    """What we know about one remote server as a delivery target (a row of `hosts`)."""

    host: str
    consecutive_failures: int = 0
    paused_until: datetime | None = None
    #: Distinct UTC days (YYYY-MM-DD) with a failure since the last success.
    failure_days: tuple[str, ...] = ()
    unavailable_since: datetime | None = None
    last_success_at: datetime | None = None
