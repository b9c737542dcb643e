"""Normalise what an admin types to name a domain or an actor; pure, no I/O.

A domain block is keyed by a lower-case, punycode host without trailing dot, so that
`Example.ORG.`, `https://example.org/@alice`, `@alice@example.org`, `*.example.org` and
`EXAMPLE.org` all name the same block. The host itself is spelled by `names.canonical_host`,
as every host that reaches us from the network is, so a block and an id always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from fedcomments.errors import InvalidInput
from fedcomments.names import HostError, canonical_host, valid_username


def normalize_domain(raw: str, *, field: str = "domain") -> str:
    """The canonical host a block is stored under; InvalidInput when it is not a host.

    Accepts a bare host, a URL, `@user@host` / `user@host` / `acct:user@host`, a
    `host:port`, and a leading `*.` (a block covers every subdomain anyway).
    """
    text = raw.strip()
    if not text:
        raise InvalidInput(f"{field}: empty", field=field)
    host = _host_part(text, field)
    if host.startswith("*."):
        host = host[2:]
    if "*" in host:
        raise InvalidInput(f"{field}: {raw.strip()!r} is not a valid domain ('*' is only "
                           "accepted as a leading '*.')", field=field)
    return _canonical_host(host, raw, field)


def _host_part(text: str, field: str) -> str:
    """The host named by a URL, a handle or a bare `host[:port][/path]`."""
    if text.lower().startswith("acct:"):
        text = text[5:]
    if "://" not in text and "@" in text:
        text = text.rsplit("@", 1)[1]
        if not text:
            raise InvalidInput(f"{field}: {text!r} has no host after '@'", field=field)
    if "://" in text:
        parts = _split(text, field)
        if parts.scheme.lower() not in ("http", "https"):
            raise InvalidInput(f"{field}: only http(s) URLs name a host, got {text!r}",
                               field=field)
        netloc = parts.netloc.rpartition("@")[2]
    else:
        netloc = re.split(r"[/?#]", text, maxsplit=1)[0]
    if netloc.startswith("["):  # [IPv6] with an optional port
        end = netloc.find("]")
        if end < 0:
            raise InvalidInput(f"{field}: unbalanced '[' in {text!r}", field=field)
        return netloc[1:end]
    if netloc.count(":") == 1:
        netloc, _, port = netloc.partition(":")
        if port and not port.isdigit():
            raise InvalidInput(f"{field}: bad port in {text!r}", field=field)
    return netloc


def _split(text: str, field: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError as exc:
        raise InvalidInput(f"{field}: not a valid URL: {text!r} ({exc})", field=field) from None


def _canonical_host(host: str, raw: str, field: str) -> str:
    try:
        return canonical_host(host)
    except HostError as exc:
        raise InvalidInput(f"{field}: {raw.strip()!r} is not a valid domain ({exc})",
                           field=field) from None


# --- actors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorRef:
    """An actor named by URL (`url`) or by handle (`username` at `host`, port kept)."""

    url: str | None = None
    username: str | None = None
    host: str | None = None

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.host}" if self.username else (self.url or "")


def parse_actor_ref(raw: str, *, field: str = "actor") -> ActorRef:
    """`@user@host`, `user@host`, `acct:user@host` or an http(s) actor URL."""
    text = raw.strip()
    if not text:
        raise InvalidInput(f"{field}: empty", field=field)
    if "://" in text:
        return ActorRef(url=normalize_actor_url(text, field=field))
    body = text[5:] if text.lower().startswith("acct:") else text
    username, at, host = body.lstrip("@").rpartition("@")
    if not at or not username or not host:
        raise InvalidInput(f"{field}: expected @user@host or an actor URL, got {raw!r}",
                           field=field)
    if not valid_username(username):
        raise InvalidInput(f"{field}: {username!r} is not a valid user name", field=field)
    name, _, port = host.partition(":")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise InvalidInput(f"{field}: bad port in {raw!r}", field=field)
    canonical = _canonical_host(name, raw, field)
    return ActorRef(username=username, host=f"{canonical}:{port}" if port else canonical)


def normalize_actor_url(raw: str, *, field: str = "actor") -> str:
    """An actor id as it is compared with activities: scheme and host lower-cased,
    IDN in punycode, no fragment (`…/users/alice#main-key` names the actor too)."""
    parts = _split(raw.strip(), field)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field}: must be an absolute http(s) URL, got {raw!r}", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{field}: credentials in URL", field=field)
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"{field}: bad port in {raw!r}", field=field) from None
    host = _canonical_host(parts.hostname, raw, field)
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def webfinger_urls(ref: ActorRef, *, allow_http: bool) -> list[str]:
    """Where to ask for `ref`'s actor: https, then plain http only in development setups."""
    assert ref.username and ref.host
    resource = quote(f"acct:{ref.username}@{ref.host}", safe=":@")
    path = f"/.well-known/webfinger?resource={resource}"
    schemes = ("https", "http") if allow_http else ("https",)
    return [f"{scheme}://{ref.host}{path}" for scheme in schemes]


def self_link(jrd: dict[str, Any]) -> str | None:
    """The ActivityPub actor URL in a WebFinger answer (`rel=self`, an AS2 media type)."""
    links = jrd.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        media = str(link.get("type", "")).lower()
        base = media.split(";", 1)[0].strip()
        # Mastodon answers application/activity+json; some servers give the ld+json form
        # with the ActivityStreams profile.
        as2 = base == "application/activity+json" or (
            base == "application/ld+json" and "activitystreams" in media)
        href = link.get("href")
        if as2 and isinstance(href, str) and href.startswith(("https://", "http://")):
            return href
    return None
