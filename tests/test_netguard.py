"""The outbound address policy: which addresses and URLs the SSRF guard lets through."""

from __future__ import annotations

import ipaddress

import pytest
from yarl import URL

from fedcomments.remote.guard import (
    FetchRefused,
    RefusalReason,
    address_allowed,
    check_url,
    forbidden_reason,
    parse_legacy_ipv4,
)

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",  # just below 172.16/12
    "172.32.0.0",  # just above 172.16/12
    "192.0.1.1",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",  # last unicast before multicast
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (what DNS64 hands an IPv6-only host)
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378::f7f7:f7f7",  # Teredo: server 65.54.227.120, client 8.8.8.8
]

FORBIDDEN = [
    # IPv4
    ("0.0.0.0", "0.0.0.0/8"),
    ("0.1.2.3", "0.0.0.0/8"),
    ("10.0.0.1", "10.0.0.0/8"),
    ("10.255.255.255", "10.0.0.0/8"),
    ("100.64.0.1", "100.64.0.0/10"),
    ("100.127.255.255", "100.64.0.0/10"),
    ("127.0.0.1", "127.0.0.0/8"),
    ("127.255.255.254", "127.0.0.0/8"),
    ("169.254.169.254", "169.254.0.0/16"),
    ("172.16.0.1", "172.16.0.0/12"),
    ("172.31.255.255", "172.16.0.0/12"),
    ("192.0.0.8", "192.0.0.0/24"),
    ("192.0.2.1", "192.0.2.0/24"),
    ("192.88.99.1", "192.88.99.0/24"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("198.18.0.1", "198.18.0.0/15"),
    ("198.19.255.255", "198.18.0.0/15"),
    ("198.51.100.7", "198.51.100.0/24"),
    ("203.0.113.9", "203.0.113.0/24"),
    ("224.0.0.1", "224.0.0.0/4"),
    ("239.255.255.250", "224.0.0.0/4"),
    ("240.0.0.1", "240.0.0.0/4"),
    ("255.255.255.255", "240.0.0.0/4"),
    # IPv6 ranges
    ("::", "::/128"),
    ("::1", "::1/128"),
    ("fc00::1", "fc00::/7"),
    ("fd12:3456:789a::1", "fc00::/7"),
    ("fe80::1", "fe80::/10"),
    ("febf:ffff::1", "fe80::/10"),
    ("fec0::1", "fec0::/10"),
    ("ff02::1", "ff00::/8"),
    ("ff05::2", "ff00::/8"),
    ("100::1", "100::/64"),
    ("2001:db8::1", "2001:db8::/32"),
    ("3fff::1", "3fff::/20"),
    ("2001:10::1", "2001:10::/28"),
    ("2001:20::1", "2001:20::/28"),
    ("2001:2::1", "2001:2::/48"),
    ("5f00::1", "5f00::/16"),
    ("64:ff9b:1::808:808", "64:ff9b:1::/48"),
    ("4000::1", "outside 2000::/3"),
    ("1::1", "outside 2000::/3"),
    # IPv6 forms embedding a forbidden IPv4
    ("::ffff:127.0.0.1", "IPv4-mapped embedding 127.0.0.1"),
    ("::ffff:169.254.169.254", "IPv4-mapped embedding 169.254.169.254"),
    ("::ffff:10.1.2.3", "IPv4-mapped embedding 10.1.2.3"),
    ("::127.0.0.1", "IPv4-compatible embedding 127.0.0.1"),
    ("::10.0.0.1", "IPv4-compatible embedding 10.0.0.1"),
    ("::ffff:0:7f00:1", "IPv4-translated embedding 127.0.0.1"),
    ("64:ff9b::7f00:1", "NAT64 embedding 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 embedding 169.254.169.254"),
    ("2002:7f00:1::", "6to4 embedding 127.0.0.1"),
    ("2002:c0a8:101::1", "6to4 embedding 192.168.1.1"),
    ("2001:0:4136:e378::80ff:fffe", "Teredo client embedding 127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo client embedding 192.0.2.45"),
    ("2001:0:a00:1::f7f7:f7f7", "Teredo server embedding 10.0.0.1"),
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    """Public unicast addresses, and transition forms embedding one, pass the policy."""
    ip = ipaddress.ip_address(address)
    assert forbidden_reason(ip) is None
    assert address_allowed(ip, allow_private=False)
    assert address_allowed(address, allow_private=False)


@pytest.mark.parametrize(("address", "why"), FORBIDDEN)
def test_forbidden_addresses_are_refused_with_their_range(address: str, why: str) -> None:
    """Each forbidden address is refused, and the reason names the range it fell in."""
    ip = ipaddress.ip_address(address)
    reason = forbidden_reason(ip)
    assert reason is not None and why in reason
    assert not address_allowed(ip, allow_private=False)
    assert not address_allowed(address, allow_private=False)


def test_ipv4_compatible_public_address_follows_its_embedded_ipv4() -> None:
    """The deprecated ::a.b.c.d form is judged by the IPv4 address it embeds."""
    assert address_allowed("::8.8.8.8", allow_private=False)
    assert not address_allowed("::192.168.0.1", allow_private=False)


def test_scoped_ipv6_address_is_refused() -> None:
    """An address with a zone identifier only makes sense on a local link."""
    assert not address_allowed(ipaddress.IPv6Address("fe80::1%eth0"), allow_private=False)
    assert not address_allowed("2606:4700::1%eth0", allow_private=False)


@pytest.mark.parametrize("garbage", ["", "localhost", "1.2.3", "::g", "999.1.1.1"])
def test_unparseable_address_is_refused(garbage: str) -> None:
    """Anything that is not an IP address fails closed."""
    assert not address_allowed(garbage, allow_private=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "169.254.1.1"])
def test_allow_private_permits_local_peers(address: str) -> None:
    """With allow_private the address policy is off (local tests and development)."""
    assert address_allowed(address, allow_private=True)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7F.0.0.0x1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_legacy_ipv4_spellings_normalise(spelling: str, address: str) -> None:
    """inet_aton-style spellings are decoded to the address they would really reach."""
    assert parse_legacy_ipv4(spelling) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize(
    "spelling", ["1.2.3.256", "1.2.65536", "4294967296", "08.1.1.1", "1_0.1", "1..2"]
)
def test_invalid_numeric_hosts_do_not_parse(spelling: str) -> None:
    """Out-of-range parts, bad octal digits and Python int() leniency are rejected."""
    assert parse_legacy_ipv4(spelling) is None


def _refusal(
    url: str, *, allow_private: bool = False, blocked: frozenset[str] = frozenset()
) -> FetchRefused:
    with pytest.raises(FetchRefused) as info:
        check_url(url, allow_private=allow_private, is_blocked=blocked.__contains__)
    return info.value


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/", RefusalReason.SCHEME),
        ("ftp://example.com/", RefusalReason.SCHEME),
        ("file:///etc/passwd", RefusalReason.SCHEME),
        ("gopher://example.com/", RefusalReason.SCHEME),
        ("https://user:pw@example.com/", RefusalReason.CREDENTIALS),
        ("https://user@example.com/", RefusalReason.CREDENTIALS),
        ("https:///path", RefusalReason.MALFORMED),
        ("https://exa%2Emple.com/", RefusalReason.MALFORMED),
        ("https://example.com%00.evil/", RefusalReason.MALFORMED),
        ("https://a..b/", RefusalReason.MALFORMED),
        ("https://example.123/", RefusalReason.MALFORMED),
        ("https://1.2.3.256/", RefusalReason.MALFORMED),
        ("https://127.0.0.1/", RefusalReason.ADDRESS),
        ("https://10.0.0.5:8443/", RefusalReason.ADDRESS),
        ("https://169.254.169.254/latest/meta-data/", RefusalReason.ADDRESS),
        ("https://[::1]/", RefusalReason.ADDRESS),
        ("https://[::ffff:127.0.0.1]/", RefusalReason.ADDRESS),
        ("https://[64:ff9b::a9fe:a9fe]/", RefusalReason.ADDRESS),
        ("https://[fe80::1%25eth0]/", RefusalReason.ADDRESS),
        ("https://2130706433/", RefusalReason.NON_CANONICAL_IP),
        ("https://0x7f.1/", RefusalReason.NON_CANONICAL_IP),
        ("https://127.1/", RefusalReason.NON_CANONICAL_IP),
        ("https://0177.0.0.1/", RefusalReason.NON_CANONICAL_IP),
        ("https://127.0.0.1./", RefusalReason.NON_CANONICAL_IP),
        ("https://134744072/", RefusalReason.NON_CANONICAL_IP),  # 8.8.8.8, still refused
    ],
)
def test_check_url_refusals(url: str, reason: RefusalReason) -> None:
    """Each unsafe URL is refused with the matching reason."""
    refusal = _refusal(url)
    assert refusal.reason is reason
    assert refusal.url == url or URL(refusal.url) == URL(url)


def test_non_canonical_refusal_names_the_real_address() -> None:
    """The message shows what an odd spelling really pointed at."""
    assert "127.0.0.1" in str(_refusal("https://0x7f.1/"))


@pytest.mark.parametrize(
    "url",
    [
        "https://blocked.example/",
        "https://BLOCKED.example/x",
        "https://blocked.example./",
        "https://blocked.example:8443/",
    ],
)
def test_blocked_host_is_refused_in_any_spelling(url: str) -> None:
    """Case, port and a trailing dot do not get a blocked host past the check."""
    refusal = _refusal(url, blocked=frozenset({"blocked.example"}))
    assert refusal.reason is RefusalReason.BLOCKED


def test_block_check_sees_punycode() -> None:
    """Internationalised names reach the block check in their punycode form."""
    seen: list[str] = []
    check_url(
        "https://Bücher.example/", allow_private=False, is_blocked=lambda h: seen.append(h) or False
    )
    assert seen == ["xn--bcher-kva.example"]


def test_blocked_ip_literal_is_refused_even_when_private_allowed() -> None:
    """allow_private lifts the address policy, never the block list."""
    refusal = _refusal(
        "http://127.0.0.1:8080/", allow_private=True, blocked=frozenset({"127.0.0.1"})
    )
    assert refusal.reason is RefusalReason.BLOCKED


@pytest.mark.parametrize(
    ("url", "host", "address"),
    [
        ("https://example.com/users/a", "example.com", None),
        ("https://Example.COM./x", "example.com", None),
        ("https://social_1.example:8443/", "social_1.example", None),
        ("https://8.8.8.8/", "8.8.8.8", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("https://[::ffff:8.8.8.8]/", "::ffff:808:808", "::ffff:8.8.8.8"),
    ],
)
def test_check_url_accepts_public_targets(url: str, host: str, address: str | None) -> None:
    """Public names and addresses pass, with the host normalised for the block check."""
    target = check_url(url, allow_private=False, is_blocked=None)
    assert target.host == host
    assert target.address == (ipaddress.ip_address(address) if address else None)
    assert target.url == URL(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "http://localhost/", "https://[::1]/", "http://10.1.1.1/"]
)
def test_allow_private_permits_http_and_local_targets(url: str) -> None:
    """Development mode lets http:// and loopback/private literals through."""
    assert check_url(url, allow_private=True, is_blocked=None).url == URL(url)


def test_hostname_is_left_to_the_resolver() -> None:
    """Ordinary names are not judged by spelling: the resolver checks what they resolve to."""
    assert check_url("https://social.example/", allow_private=False,
                     is_blocked=None).address is None


@pytest.mark.parametrize(("url", "why"), [
    ("https://abcdefghijklmnop.onion/users/a", "Tor onion service"),
    ("https://SOCIAL.Onion./users/a", "Tor onion service"),
    ("https://xn--bcher-kva.onion/", "Tor onion service"),
    ("https://social.i2p/inbox", "I2P"),
    ("https://server.invalid/", "never a real name"),
    ("https://name.alt/", "outside the DNS"),
    ("https://localhost/", "this machine"),
    ("https://social.localhost/", "this machine"),
    ("https://printer.local/", "multicast DNS"),
    ("https://nas.home.arpa/", "home network"),
    ("https://wiki.corp.internal/", "private network"),
])
def test_special_use_names_are_refused_before_any_lookup(url: str, why: str) -> None:
    """Given a special-use name (RFC 6761, 6762, 7686, 8375, 9476; I2P), when the guard
    checks it, then it is refused by name, so no resolver ever sees it."""
    refusal = _refusal(url)
    assert (refusal.reason, why in str(refusal)) == (RefusalReason.SPECIAL_USE, True)


@pytest.mark.parametrize("url", ["https://abc.onion/", "http://x.i2p/", "http://x.invalid/",
                                 "http://x.alt/"])
def test_names_outside_the_dns_are_refused_in_development_too(url: str) -> None:
    """Given development mode (private addresses allowed), then onion, I2P, .invalid and
    .alt names are still refused: no lookup reaches them; while the names of this machine
    and its network reach the resolver there, and .example and .test are never special
    (RFC 6761)."""
    assert _refusal(url, allow_private=True).reason is RefusalReason.SPECIAL_USE
    for fine in ("http://localhost:8080/", "http://social.localhost/", "http://box.local/",
                 "http://nas.home.arpa/", "https://social.example/", "https://blog.test/"):
        assert check_url(fine, allow_private=True, is_blocked=None).address is None
