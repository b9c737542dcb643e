"""One spelling of every host: the normaliser, its fast path (which agrees with urlsplit
plus the normaliser on every input we try), special-use names and handles."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fedcomments.names import (
    HostError,
    canonical_host,
    canonical_url,
    handle,
    host_of,
    http_scheme,
    origin,
    special_use,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

TRICKY = [
    "https://example.org/users/alice", "HTTPS://Example.ORG/x", "http://h:8080/p?q#f",
    "https://h.:443", "https://h", "https://h?x", "https://h#x", "http://:80/", "http:///x",
    "https://user@h/", "https://user:pw@h:1/", "https://[::1]:8/x", "https://[::1/x",
    "https://ex%41mple.org/", "https://exa\tmple.org/", "https://example.org\t/x",
    "https://example.org/pa\tth", " https://example.org/", "https://h:80x/", "https://h:/",
    "ftp://example.org/", "httpx://example.org/", "https:example.org", "//example.org/x",
    "", "https://", "https://-.-/", "https://xn--bcher-kva.example/", "https://bücher.example/",
    "https://h\\@evil/", "https://h;x/", "https://h%2f/", "hTtP://MiXeD.case:1/",
    "https://example.org\n/", "\x00https://h/", "https://h\x00/",
]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _guarded(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except ValueError:
        return ValueError


def _canonical_or_empty(host: str | None) -> str:
    try:
        return canonical_host(host) if host else ""
    except HostError:
        return ""


def _reference(url: str) -> tuple[object, ...]:
    """What urlsplit and the normaliser say, the slow way."""
    def host() -> object:
        try:
            return _canonical_or_empty(urlsplit(url).hostname)
        except ValueError:
            return ""

    def scheme() -> object:
        found = urlsplit(url).scheme.lower()
        return found if found in ("http", "https") else None

    def netloc() -> object:
        try:
            parts = urlsplit(url)
            canon = _canonical_or_empty(parts.hostname)
            port = parts.port
        except ValueError:
            return "", "", 0
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not canon:
            return "", "", 0
        return scheme, canon, {"http": 80, "https": 443}[scheme] if port is None else port

    return (_guarded(host), _guarded(scheme), _guarded(netloc))


def _ours(url: str) -> tuple[object, ...]:
    return (_guarded(lambda: host_of(url)), _guarded(lambda: http_scheme(url)),
            _guarded(lambda: origin(url)))


def _fuzzed(rng: random.Random, n: int) -> list[str]:
    alphabet = "hHtTpPsS:/.-[]@%?#\t\n \\0123456789aZxé"
    seeds = TRICKY[:12]
    out = []
    for _ in range(n):
        s = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(s) + 1)
            op = rng.random()
            if op < 0.4:
                s.insert(i, rng.choice(alphabet))
            elif op < 0.7 and s:
                del s[min(i, len(s) - 1)]
            elif s:
                s[min(i, len(s) - 1)] = rng.choice(alphabet)
        out.append("".join(s))
    return out


@pytest.mark.parametrize("url", TRICKY)
def test_tricky_urls_agree_with_urlsplit(url: str) -> None:
    """Given an awkward URL, then host, http(s) scheme and origin equal what urlsplit and
    the normaliser give (or both raise)."""
    assert _ours(url) == _reference(url)


def test_fuzzed_urls_agree_with_urlsplit() -> None:
    """Given 50,000 mutations of typical ids (seeded), then every answer equals the slow
    way's."""
    rng = random.Random(20261126)
    mismatches = [u for u in _fuzzed(rng, 50_000) if _ours(u) != _reference(u)]
    assert mismatches == []


def test_every_string_in_the_samples_agrees() -> None:
    """Given every string value in the captured fediverse samples, then ours equals urlsplit."""
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples is not beside the project")
    strings = [s for f in sorted(SAMPLES.rglob("*.json"))
               for s in _strings(json.loads(f.read_text(encoding="utf-8")))]
    assert len(strings) > 1000
    assert [s for s in strings if _ours(s) != _reference(s)] == []


@pytest.mark.parametrize(("host", "expected"), [
    ("example.org", "example.org"),
    ("Example.ORG.", "example.org"),
    ("Bücher.Example", "xn--bcher-kva.example"),
    ("BÜCHER.example.", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("ｅｘａｍｐｌｅ．org", "example.org"),
    ("faß.de", "xn--fa-hia.de"),
    ("odd_host.example", "odd_host.example"),
    ("192.0.2.7", "192.0.2.7"),
    ("[2001:DB8::1]", "2001:db8::1"),
    ("2001:db8:0:0::1", "2001:db8::1"),
])
def test_canonical_host_has_one_spelling_per_host(host: str, expected: str) -> None:
    """Given a host in any spelling a document or an admin may use, then the normaliser
    gives the one the blocklist, the store and the guard all compare."""
    assert canonical_host(host) == expected


@pytest.mark.parametrize("host", [
    "", ".", "exa mple.org", "-lead.example", "a..b.example", "1.2.3", "999.1.1.1",
    "xn--zz.example", "xn--bucher-xyd.example", "a" * 64 + ".example", "fe80::1%eth0",
    "[zz::1]", ".".join(["abcdefghij"] * 24) + ".example", "bad!host.example",
])
def test_canonical_host_refuses_what_names_no_host(host: str) -> None:
    """Given something that is not a host (or punycode that does not round-trip), then it
    is refused rather than compared in a spelling nothing else uses."""
    with pytest.raises(HostError):
        canonical_host(host)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.org/users/a", "https://example.org/users/a"),
    ("HTTPS://Example.ORG/Users/A?x=Y#Main-Key", "https://example.org/Users/A?x=Y#Main-Key"),
    ("https://bücher.example/users/u#main-key",
     "https://xn--bcher-kva.example/users/u#main-key"),
    ("http://bücher.example:8080", "http://xn--bcher-kva.example:8080"),
    ("https://example.org./x", "https://example.org/x"),
    ("https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
    ("https://odd_host.example/u", "https://odd_host.example/u"),
    ("https://user@example.org/", None),
    ("https://example.org:99999/", None),
    ("https://example.org:8x/", None),
    ("https://xn--zz.example/", None),
    ("ftp://example.org/", None),
    ("https:///x", None),
    ("mailto:a@example.org", None),
])
def test_canonical_url_respells_only_scheme_and_host(url: str, expected: str | None) -> None:
    """Given an id, then its scheme and host are spelled the one way and the rest is kept
    as sent; an id with credentials, a bad port or an unusable host is no id."""
    assert canonical_url(url) == expected


def test_canonical_url_agrees_with_host_of_on_fuzzed_ids() -> None:
    """Given 20,000 mutations of typical ids (seeded), then a respelled id keeps its host,
    and respelling it again changes nothing."""
    rng = random.Random(20261127)
    for url in _fuzzed(rng, 20_000):
        canon = canonical_url(url)
        if canon is None:
            continue
        assert canonical_url(canon) == canon, url
        assert host_of(canon) == host_of(url), url


@pytest.mark.parametrize(("host", "local_allowed", "refused"), [
    ("abc.onion", True, True), ("abc.onion", False, True), ("x.i2p", True, True),
    ("x.invalid", True, True), ("x.alt", True, True), ("localhost", False, True),
    ("localhost", True, False), ("a.b.localhost", False, True), ("box.local", False, True),
    ("nas.home.arpa", False, True), ("x.internal", False, True), ("blog.test", False, False),
    ("social.example", False, False), ("onion.example", False, False),
    ("notlocalhost", False, False), ("arpa", False, False),
])
def test_special_use_names(host: str, local_allowed: bool, refused: bool) -> None:
    """Given a special-use suffix (RFC 6761, 6762, 7686, 8375, 9476; I2P), then it is named
    as such; names of this machine pass only where local addresses are allowed."""
    assert (special_use(host, allow_local=local_allowed) is not None) is refused


@pytest.mark.parametrize(("username", "shown"), [
    ("alice", "@alice@social.example"),
    ("a.b-c_d~e", "@a.b-c_d~e@social.example"),
    ("admin@other.example", None),
    ("@admin", None),
    ("admin other", None),
    ("bücher", None),
    ("", None),
    (None, None),
    ("a" * 101, None),
])
def test_handles_show_only_webfinger_usernames(username: str | None, shown: str | None) -> None:
    """Given a preferredUsername, then it is shown as @name@host only when it could be the
    user part of an acct: URI (so it can never read as another server's account)."""
    assert handle(username, "social.example") == shown
