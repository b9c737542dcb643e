"""In-memory view of domain and actor blocks: cheap synchronous checks for every hot path."""

from __future__ import annotations

from collections.abc import Iterable

from fedcomments.ap.iri import hostname


def host_of(url: str) -> str:
    """Lower-case host of a URL without port ('' when there is none)."""
    try:
        return (hostname(url) or "").rstrip(".").lower()
    except ValueError:
        return ""


class Blocklist:
    """Blocked domains match themselves and every subdomain; actors match by id."""

    def __init__(self, domains: Iterable[str] = (), actors: Iterable[str] = ()) -> None:
        self.domains: frozenset[str] = frozenset(domains)
        self.actors: frozenset[str] = frozenset(actors)

    def replace(self, domains: Iterable[str], actors: Iterable[str]) -> None:
        self.domains = frozenset(domains)
        self.actors = frozenset(actors)

    def domain_blocked(self, host: str) -> bool:
        if not self.domains or not host:
            return False
        host = host.rstrip(".").lower()
        # Walk the suffixes: a.b.example.org → b.example.org → example.org → org.
        while True:
            if host in self.domains:
                return True
            _, dot, rest = host.partition(".")
            if not dot:
                return False
            host = rest

    def url_blocked(self, url: str | None) -> bool:
        """True when the URL's host is blocked or the URL is a blocked actor."""
        if not url:
            return False
        if url in self.actors:
            return True
        return bool(self.domains) and self.domain_blocked(host_of(url))
