"""Host names of URLs, fast for the shape nearly every ActivityPub id has.

`urllib.parse.urlsplit` is the reference: an inbox request asks for the host of a dozen
ids (signature keyId, actor, object, attributedTo, inReplyTo, each checked against the
blocklist and for its origin), and urlsplit builds a whole result to answer. A plain
`http(s)://host[:port]` prefix with an ASCII host is read with one regex; anything else
(user info, IPv6 literals, other schemes, odd characters) goes to urlsplit.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_PLAIN = re.compile(r"([hH][tT][tT][pP][sS]?)://([A-Za-z0-9.-]+)(?::[0-9]*)?(?=[/?#]|\Z)")


def hostname(url: str) -> str | None:
    """`urlsplit(url).hostname` (lower-cased, None when absent); ValueError as urlsplit."""
    plain = _PLAIN.match(url)
    if plain is not None:
        return plain.group(2).lower()
    return urlsplit(url).hostname


def http_scheme(url: str) -> str | None:
    """'http' or 'https' when `url` has one of those schemes (in any case), else None."""
    plain = _PLAIN.match(url)
    scheme = plain.group(1) if plain is not None else urlsplit(url).scheme
    scheme = scheme.lower()
    return scheme if scheme in ("http", "https") else None


def origin(url: str) -> tuple[str, str]:
    """(scheme, lower-cased netloc) as urlsplit gives them: what "same origin" compares."""
    plain = _PLAIN.match(url)
    if plain is not None:
        return plain.group(1).lower(), url[plain.end(1) + 3:plain.end()].lower()
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
