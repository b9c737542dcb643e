"""Every URL we mint, derived from base_url in one place (ids must never drift)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


def permalink_spellings(permalink: str) -> tuple[str, str]:
    """The spellings that name one blog post: without its #fragment, with and without the
    trailing slash (the permalink as given first)."""
    bare = permalink.split("#", 1)[0]
    return bare, bare[:-1] if bare.endswith("/") else bare + "/"


def comment_on_blog(permalink: str, comment_id: int) -> str:
    """Where a comment is read on the blog: under its post, at the anchor the widget and
    the server's page both give it."""
    return f"{permalink.split('#', 1)[0]}#comment-{comment_id}"


@dataclass(frozen=True)
class Urls:
    base_url: str
    username: str

    @property
    def host(self) -> str:
        """Host as it appears in handles: with the port only when it is not the default."""
        return urlsplit(self.base_url).netloc

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.host}"

    @property
    def acct(self) -> str:
        return f"acct:{self.username}@{self.host}"

    @property
    def actor(self) -> str:
        return f"{self.base_url}/users/{self.username}"

    @property
    def key_id(self) -> str:
        return f"{self.actor}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.actor}/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.actor}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.actor}/followers"

    @property
    def following(self) -> str:
        return f"{self.actor}/following"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    def post(self, slug: str) -> str:
        return f"{self.base_url}/posts/{slug}"

    def post_replies(self, slug: str) -> str:
        return f"{self.post(slug)}/replies"

    def post_comments_feed(self, slug: str) -> str:
        return f"{self.post(slug)}/comments.atom"

    @property
    def comments_feed(self) -> str:
        return f"{self.base_url}/comments.atom"

    def post_context(self, slug: str) -> str:
        return f"{self.post(slug)}/context"

    def comment(self, comment_id: int) -> str:
        return f"{self.base_url}/comments/{comment_id}"

    def comment_replies(self, comment_id: int) -> str:
        return f"{self.comment(comment_id)}/replies"

    def activity(self, kind: str, token: str) -> str:
        return f"{self.base_url}/activities/{kind}/{token}"

    def is_local(self, url: str | None) -> bool:
        return url is not None and (url == self.base_url or url.startswith(self.base_url + "/"))


def permalink_key(url: str) -> str:
    """What makes two spellings of a blog permalink the same post: the scheme (http and
    https), the host's case, a default port, a trailing slash and a #fragment do not count.
    An import matches its posts to ours by this key."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"//{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def site_key(url: str) -> str:
    """A site as the key of what was imported from it: host and path, no scheme."""
    return permalink_key(url).lstrip("/")
