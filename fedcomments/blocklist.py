"""In-memory view of domain and actor blocks: cheap synchronous checks for every hot path."""

from __future__ import annotations

from collections.abc import Iterable

from fedcomments.names import host_of


class Blocklist:
    """Blocked domains match themselves and every subdomain; actors match by id.

    `version` is the database's blocks counter the lists were read at (None before the
    first load): the lists and their version are always replaced together.
    """

    def __init__(self, domains: Iterable[str] = (), actors: Iterable[str] = (),
                 version: int | None = None) -> None:
        self.domains: frozenset[str] = frozenset(domains)
        self.actors: frozenset[str] = frozenset(actors)
        self.version = version

    def replace(self, domains: Iterable[str], actors: Iterable[str],
                version: int | None = None) -> None:
        """New lists; `version` None keeps the current one (a block of this process
        applied ahead of its commit only ever adds to what the version holds)."""
        self.domains = frozenset(domains)
        self.actors = frozenset(actors)
        if version is not None:
            self.version = version

    def view(self) -> Blocklist:
        """A copy that later replacements leave alone: lists and version of one moment."""
        return Blocklist(self.domains, self.actors, self.version)

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

    def first_blocked(self, urls: Iterable[str | None]) -> str | None:
        """The first of `urls` that is blocked, if any."""
        return next((u for u in urls if u and self.url_blocked(u)), None)
