"""Normalise what an admin types to name a domain or an actor; pure, no I/O.

A domain block is keyed by a lower-case, punycode host without trailing dot, so that
`Example.ORG.`, `https://example.org/@alice`, `@alice@example.org`, `*.example.org` and
`EXAMPLE.org` all name the same block, and an IDN is stored the way it arrives in URLs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna

from fedcomments.errors import InvalidInput

MAX_HOST = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_USERNAME = re.compile(r"[A-Za-z0-9_.~-]{1,100}\Z")


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
    return _canonical_host(host, raw, field, allow_ip=True)


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


def _canonical_host(host: str, raw: str, field: str, *, allow_ip: bool) -> str:
    bad = f"{field}: {raw.strip()!r} is not a valid domain"
    if not host:
        raise InvalidInput(f"{bad} (no host)", field=field)
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidInput(f"{bad} (malformed IPv6 address)", field=field) from None
        if not allow_ip:
            raise InvalidInput(f"{bad} (an IP address)", field=field)
        return address.compressed
    if host.endswith("."):
        host = host[:-1]
    if "*" in host:
        raise InvalidInput(f"{bad} ('*' is only accepted as a leading '*.')", field=field)
    last = host.rsplit(".", 1)[-1]
    if last.isascii() and last.isdigit():
        # Like URL parsers: a host ending in a number is an IPv4 address or nothing.
        try:
            ipv4 = ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidInput(f"{bad} (numeric, but not an IPv4 address)", field=field) from None
        if not allow_ip:
            raise InvalidInput(f"{bad} (an IP address)", field=field)
        return str(ipv4)
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"{bad} ({exc})", field=field) from None
    ascii_host = ascii_host.lower()
    if len(ascii_host) > MAX_HOST:
        raise InvalidInput(f"{bad} (longer than {MAX_HOST} characters)", field=field)
    if not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise InvalidInput(f"{bad} (letters, digits and '-' only)", field=field)
    return ascii_host


def covering_domain(host: str, blocked: set[str] | frozenset[str]) -> str | None:
    """The blocked entry that covers `host` (itself or a parent domain), if any."""
    current = host
    while True:
        if current in blocked:
            return current
        _, dot, rest = current.partition(".")
        if not dot or ":" in host:
            return None
        current = rest


def covers(domain: str, host: str) -> bool:
    """True when a block on `domain` applies to `host` (equal or a subdomain)."""
    return host == domain or host.endswith("." + domain)


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
    if not _USERNAME.match(username):
        raise InvalidInput(f"{field}: {username!r} is not a valid user name", field=field)
    name, _, port = host.partition(":")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise InvalidInput(f"{field}: bad port in {raw!r}", field=field)
    canonical = _canonical_host(name, raw, field, allow_ip=True)
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
    host = _canonical_host(parts.hostname, raw, field, allow_ip=True)
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
