"""The fast host-name and origin readers agree with urllib.parse.urlsplit on every input we try."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fedcomments.ap.iri import hostname, http_scheme, origin

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


def _reference(url: str) -> tuple[object, ...]:
    def scheme() -> object:
        found = urlsplit(url).scheme
        return found if found in ("http", "https") else None

    def netloc() -> object:
        parts = urlsplit(url)
        return parts.scheme, parts.netloc.lower()

    return (_guarded(lambda: urlsplit(url).hostname), _guarded(scheme), _guarded(netloc))


def _ours(url: str) -> tuple[object, ...]:
    return (_guarded(lambda: hostname(url)), _guarded(lambda: http_scheme(url)),
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
    """Given an awkward URL, then host and http(s) scheme equal urlsplit's (or both raise)."""
    assert _ours(url) == _reference(url)


def test_fuzzed_urls_agree_with_urlsplit() -> None:
    """Given 50,000 mutations of typical ids (seeded), then every answer equals urlsplit's."""
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
