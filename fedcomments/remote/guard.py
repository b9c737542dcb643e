"""Outbound address policy (the SSRF guard): which URLs and peer addresses we may contact.

Pure functions, no I/O; `remote.py` applies them to every hop and to every resolved address.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from yarl import URL

from fedcomments.errors import RemoteError
from fedcomments.names import HostError, canonical_host, special_use

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: host (lowercase, punycode, no trailing dot) -> True if refused (a blocked domain).
HostCheck = Callable[[str], bool]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: IPv4 ranges we never connect to: nothing in them is a fediverse server, and most of
#: them reach the machine itself, its LAN or the cloud provider's metadata service.
FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "this network; 0.0.0.0 connects to the local host on Linux"),
    (_V4("10.0.0.0/8"), "private (RFC 1918)"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT shared space"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local, cloud metadata endpoints"),
    (_V4("172.16.0.0/12"), "private (RFC 1918)"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments"),
    (_V4("192.0.2.0/24"), "documentation TEST-NET-1"),
    (_V4("192.88.99.0/24"), "deprecated 6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private (RFC 1918)"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation TEST-NET-2"),
    (_V4("203.0.113.0/24"), "documentation TEST-NET-3"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved, includes broadcast 255.255.255.255"),
)

#: IPv6 ranges refused outright. Everything outside 2000::/3 is refused as well unless it
#: embeds an IPv4 address (see `_embedded_v4`); the entries outside 2000::/3 are listed
#: anyway so that the refusal reason names them.
FORBIDDEN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64: the embedding is operator-defined"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("2001:10::/28"), "deprecated ORCHID"),
    (_V6("2001:20::/28"), "ORCHIDv2"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "SRv6 segment identifiers"),
    (_V6("fc00::/7"), "unique local (private)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "deprecated site-local"),
    (_V6("ff00::/8"), "multicast"),
)

_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_V4_COMPATIBLE = _V6("::/96")
_V4_TRANSLATED = _V6("::ffff:0:0:0/96")
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")
_SIXTOFOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")


class RefusalReason(enum.StrEnum):
    """Why the guard refused a URL; stable values, fit for logs and metrics."""

    SCHEME = "scheme"
    MALFORMED = "malformed"
    CREDENTIALS = "credentials"
    NON_CANONICAL_IP = "non-canonical-ip"
    ADDRESS = "address"
    SPECIAL_USE = "special-use"
    BLOCKED = "blocked"


class FetchRefused(RemoteError):
    """The guard refused a request before any byte was sent to the peer."""

    def __init__(self, message: str, *, url: str, reason: RefusalReason) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A URL the guard let through, with its normalised host."""

    url: URL
    #: lowercase punycode host without a trailing dot (what `HostCheck` receives)
    host: str
    #: set when the host is an IP literal (aiohttp then skips the resolver)
    address: IPAddress | None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Name the forbidden range `ip` falls in, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv4Address):
        for net4, why in FORBIDDEN_V4:
            if ip in net4:
                return f"{net4} ({why})"
        return None
    if ip.scope_id:
        return "scoped IPv6 address (zone identifiers only make sense on a local link)"
    for net6, why in FORBIDDEN_V6:
        if ip in net6:
            return f"{net6} ({why})"
    embedded = _embedded_v4(ip)
    if embedded:
        for kind, v4 in embedded:
            inner = forbidden_reason(v4)
            if inner is not None:
                return f"{kind} embedding {v4}: {inner}"
        return None
    if ip not in _GLOBAL_UNICAST_V6:
        return "outside 2000::/3 global unicast"
    return None


def address_allowed(ip: IPAddress | str, allow_private: bool) -> bool:
    """True if we may connect to `ip`; unparseable input is refused (default deny)."""
    if allow_private:
        # Development and test mode: the operator opted out of the address policy.
        return True
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return False
    return forbidden_reason(ip) is None


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses an IPv6 address carries by a standard transition mechanism.

    The socket layer (or a relay on the path) turns these into IPv4 traffic, so an
    address like ::ffff:127.0.0.1 or 64:ff9b::a9fe:a9fe is as dangerous as the IPv4
    it embeds. Mastodon refuses NAT64, 6to4 and Teredo wholesale; we decode them so
    that an IPv6-only host behind DNS64 can still reach IPv4-only instances.
    """
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [("IPv4-mapped", ip.ipv4_mapped)]
    if ip in _V4_TRANSLATED:
        return [("IPv4-translated", low32)]
    if ip in _V4_COMPATIBLE:
        return [("IPv4-compatible", low32)]
    if ip in _NAT64_WELL_KNOWN:
        return [("NAT64", low32)]
    if ip.sixtofour is not None:
        return [("6to4", ip.sixtofour)]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [("Teredo client", client), ("Teredo server", server)]
    return []


_HEX_PART = re.compile(r"0[xX][0-9a-fA-F]*\Z")
# Strict digit sets: int() alone would also accept "1_0", " 1" and "+1".
_DIGITS = {
    16: re.compile(r"[0-9a-fA-F]+\Z"),
    8: re.compile(r"[0-7]+\Z"),
    10: re.compile(r"[0-9]+\Z"),
}


def _ends_in_number(host: str) -> bool:
    """The WHATWG URL rule: a host whose last label is numeric is an IPv4 address."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    return (last.isascii() and last.isdigit()) or bool(_HEX_PART.match(last))


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse IPv4 the way inet_aton and browsers do (127.1, 0x7f.1, 2130706433, 0177.0.0.1).

    Returns None when the host is not a valid number in any of those spellings.
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if _HEX_PART.match(part):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if not digits:
            if base == 10:
                return None
            numbers.append(0)
            continue
        if not _DIGITS[base].match(digits):
            return None
        numbers.append(int(digits, base))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def check_url(url: str | URL, *, allow_private: bool, is_blocked: HostCheck | None) -> Target:
    """Return the checked target, or raise FetchRefused; run it on every hop.

    The same `yarl.URL` object is handed to aiohttp afterwards, so the guard and the
    client can never disagree about which host a URL names.
    """
    text = str(url)

    def refuse(message: str, reason: RefusalReason) -> FetchRefused:
        return FetchRefused(f"refused {text!r}: {message}", url=text, reason=reason)

    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError) as exc:
        raise refuse(f"unparseable URL ({exc})", RefusalReason.MALFORMED) from exc
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed_schemes:
        raise refuse(f"scheme {parsed.scheme!r} is not allowed", RefusalReason.SCHEME)
    if parsed.user is not None or parsed.password is not None:
        # Userinfo would become a Basic auth header sent to whoever the URL names.
        raise refuse("credentials in URL", RefusalReason.CREDENTIALS)
    raw_host = parsed.raw_host
    if not raw_host:
        raise refuse("no host", RefusalReason.MALFORMED)

    address: IPAddress | None = None
    if ":" in raw_host:
        if "%" in raw_host:
            raise refuse("scoped IPv6 literal", RefusalReason.ADDRESS)
        try:
            address = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise refuse("malformed IPv6 literal", RefusalReason.MALFORMED) from exc
        host = str(address)
    elif _ends_in_number(raw_host):
        legacy = parse_legacy_ipv4(raw_host)
        if legacy is None:
            raise refuse("numeric host is not an IPv4 address", RefusalReason.MALFORMED)
        if str(legacy) != raw_host:
            # getaddrinfo accepts these spellings and aiohttp would hand some of them to
            # the resolver as names; no real instance is addressed like this.
            raise refuse(f"non-canonical spelling of {legacy}", RefusalReason.NON_CANONICAL_IP)
        address = legacy
        host = raw_host
    else:
        # yarl hands the name over lower-case and punycode-encoded; the normaliser checks
        # it the way every host we compare is checked (and drops a trailing dot).
        try:
            host = canonical_host(raw_host)
        except HostError as exc:
            raise refuse(f"malformed host {raw_host!r} ({exc})", RefusalReason.MALFORMED) from None
        # Before any DNS lookup: these names never lead to a fediverse server, or lead
        # into this machine or its network (RFC 6761, 6762, 7686, 8375, 9476).
        why = special_use(host, allow_local=allow_private)
        if why is not None:
            raise refuse(f"{host!r} is {why}", RefusalReason.SPECIAL_USE)

    if address is not None and not address_allowed(address, allow_private):
        raise refuse(f"{address} is in {forbidden_reason(address)}", RefusalReason.ADDRESS)
    # "example.com." names the same server as "example.com": check the normalised host.
    if is_blocked is not None and is_blocked(host):
        raise refuse(f"host {host!r} is blocked", RefusalReason.BLOCKED)
    return Target(url=parsed, host=host, address=address)
