"""Every URL we mint, derived from base_url in one place (ids must never drift)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit


# Asked on every thread read that is not served from the cache: the few permalinks a blog
# has are parsed once.
@functools.lru_cache(maxsize=1024)
def permalink_spellings(permalink: str) -> tuple[str, ...]:
    """Every spelling that names the same blog post as `permalink` (the same
    `permalink_key`) in the form posts are stored in (`canonical_permalink`): http and
    https, with and without the trailing slash. The permalink as given (without its
    #fragment) comes first, so a post stored under it before is found as it was."""
    given = permalink.strip().split("#", 1)[0]
    scheme, host, port, path, query = _permalink_parts(given)
    if scheme not in ("http", "https") or not host:
        return (given,)
    slashes = ("/", "") if given.split("?", 1)[0].endswith("/") else ("", "/")
    spellings = [given] + [_permalink_url(s, host, port, path + slash, query)
                           for s in (scheme, "https" if scheme == "http" else "http")
                           for slash in slashes]
    return tuple(dict.fromkeys(spellings))


def canonical_permalink(url: str) -> str:
    """A permalink as posts are stored: scheme and host in lower case, no default port, no
    user name and no #fragment (its trailing slash, path and query as given)."""
    scheme, host, port, path, query = _permalink_parts(url)
    if scheme not in ("http", "https") or not host:
        return url.strip()
    slash = "/" if url.strip().split("#", 1)[0].split("?", 1)[0].endswith("/") else ""
    return _permalink_url(scheme, host, port, path + slash, query)


def _permalink_parts(url: str) -> tuple[str, str, int | None, str, str]:
    """(scheme, host, port, path, ?query) as every comparison of permalinks sees them:
    lower case, a default port as None, the path without its trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.scheme.lower(), host, None if port in (80, 443) else port,
            parts.path.rstrip("/"), f"?{parts.query}" if parts.query else "")


def _permalink_url(scheme: str, host: str, port: int | None, path: str, query: str) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}{'' if port is None else f':{port}'}{path}{query}"


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
    Every lookup of a post by permalink (`permalink_spellings`) and every import matches
    by this key."""
    _, host, port, path, query = _permalink_parts(url)
    netloc = host if port is None else f"{host}:{port}"
    return f"//{netloc}{path}{query}"


def site_key(url: str) -> str:
    """A site as the key of what was imported from it: host and path, no scheme."""
    return permalink_key(url).lstrip("/")
