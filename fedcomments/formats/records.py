"""What an export holds, in one shape for every system: comments, each with its post."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from fedcomments.errors import InvalidInput
from fedcomments.model import Attachment, ImportKey

#: How a record's text is written in its source, so it is made HTML the way that system
#: shows it: "html" as is, "wordpress" with WordPress's paragraphs and links, "markdown".
TEXT_FORMATS = ("html", "wordpress", "markdown")
#: A comment's state in its source; spam and trash are skipped unless asked for.
STATUSES = ("approved", "pending", "rejected", "spam", "trash", "deleted")
#: Pingbacks, trackbacks and webmentions are notices from other blogs, skipped unless
#: asked for.
KINDS = ("comment", "pingback", "trackback", "webmention")


#: How deep an export's elements may nest: WordPress's WXR nests six deep (rss, channel,
#: item, wp:comment, wp:commentmeta, wp:meta_value), Disqus's four. A crafted file nested
#: deeper makes the XML reader hold every open element (2 million of them, 14 MB of
#: file, took 580 MB), so it is refused as soon as it passes this depth.
MAX_XML_DEPTH = 32


class BadExport(InvalidInput):
    """The file is not the export it was said to be, or is malformed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


@dataclass(frozen=True)
class PostRecord:
    """The post a comment belongs to, as the export names it."""

    permalink: str
    title: str
    published: datetime | None = None
    #: When the post was deleted where it comes from (fedcomments exports only): a post
    #: created for it is created deleted.
    deleted: datetime | None = None


@dataclass(frozen=True)
class ActorRecord:
    """A fediverse author (fedcomments exports only)."""

    ap_id: str
    type: str = "Person"
    username: str | None = None
    name: str | None = None
    url: str | None = None
    icon: str | None = None
    inbox: str | None = None
    shared_inbox: str | None = None
    followers_url: str | None = None


@dataclass(frozen=True)
class ReactionRecord:
    """A like or boost by a fediverse actor (fedcomments exports only)."""

    type: str
    actor: ActorRecord
    ap_id: str | None
    created: datetime


@dataclass(frozen=True)
class CommentRecord:
    key: ImportKey
    post: PostRecord
    published: datetime
    content: str
    text_format: str = "html"
    status: str = "approved"
    kind: str = "comment"
    parent: ImportKey | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_website: str | None = None
    # What only a fedcomments export carries: where the comment came from and its
    # fediverse identity.
    origin: str = "local"
    visibility: str = "public"
    ap_id: str | None = None
    url: str | None = None
    in_reply_to: str | None = None
    actor: ActorRecord | None = None
    summary: str | None = None
    sensitive: bool = False
    language: str | None = None
    updated: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[str, ...] = ()
    reactions: tuple[ReactionRecord, ...] = ()


@dataclass(frozen=True)
class PostReactions:
    """Likes and boosts of a post itself (fedcomments exports only)."""

    post: PostRecord
    reactions: tuple[ReactionRecord, ...]


@dataclass(frozen=True)
class Skipped:
    """Something the export holds that cannot be imported, and why (counted)."""

    reason: str


Record = CommentRecord | PostReactions | Skipped
Records = Iterator[Record]
