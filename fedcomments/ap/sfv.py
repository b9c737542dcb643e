"""RFC 8941 structured field values: the subset HTTP Message Signatures and Content-Digest use
(dictionaries, inner lists, parameters, strings, tokens, integers, decimals, booleans, bytes)."""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field

from fedcomments.errors import FedcommentsError


class Token(str):
    """A token bare item; kept apart from `str` (a String item) so it serialises unquoted."""


BareItem = int | float | str | bytes | bool
Params = dict[str, BareItem]


@dataclass(frozen=True)
class Item:
    """A bare item with its parameters."""

    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    """A parenthesised list of items with its own parameters."""

    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


Member = Item | InnerList


class StructuredFieldError(FedcommentsError):
    """A structured header field does not follow RFC 8941."""

    http_status = 400


_KEY_FIRST = set(string.ascii_lowercase + "*")
_KEY_REST = _KEY_FIRST | set(string.digits + "_-.")
_TCHAR = set(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_TOKEN_FIRST = set(string.ascii_letters + "*")
_TOKEN_REST = _TCHAR | {":", "/"}
_NUMBER_RE = re.compile(r"-?(\d+)(\.(\d*))?")
_INT_MAX = 999_999_999_999_999
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def fail(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"{what} at offset {self.i} in {self.s!r}")

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.i += 1

    def key(self) -> str:
        start = self.i
        if self.peek() not in _KEY_FIRST or not self.peek():
            raise self.fail("expected a key")
        self.i += 1
        while self.peek() and self.peek() in _KEY_REST:
            self.i += 1
        return self.s[start : self.i]

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            params[name] = value
        return params

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    def member(self) -> Member:
        if self.peek() != "(":
            return self.item()
        self.i += 1
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise self.fail("expected SP or ')' in inner list")

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or (char.isdigit() and char.isascii()):
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            value = self.s[self.i + 1 : self.i + 2]
            if value not in ("0", "1"):
                raise self.fail("invalid boolean")
            self.i += 2
            return value == "1"
        if char and char in _TOKEN_FIRST:
            start = self.i
            self.i += 1
            while self.peek() and self.peek() in _TOKEN_REST:
                self.i += 1
            return Token(self.s[start : self.i])
        raise self.fail("expected a bare item")

    def number(self) -> int | float:
        match = _NUMBER_RE.match(self.s, self.i)
        if not match:
            raise self.fail("expected a number")
        whole, dot, frac = match.group(1), match.group(2), match.group(3)
        if dot is None:
            if len(whole) > 15:
                raise self.fail("integer too long")
            self.i = match.end()
            return int(match.group(0))
        if len(whole) > 12 or not frac or len(frac) > 3:
            raise self.fail("invalid decimal")
        self.i = match.end()
        return float(match.group(0))

    def string(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.fail("unterminated string")
            self.i += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\") or not escaped:
                    raise self.fail("invalid escape in string")
                out.append(escaped)
                self.i += 1
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise self.fail("invalid character in string")
            else:
                out.append(char)

    def byte_sequence(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        encoded = self.s[self.i + 1 : end]
        if not _B64_RE.fullmatch(encoded):
            raise self.fail("invalid base64 in byte sequence")
        self.i = end + 1
        try:
            # RFC 8941 lets parsers accept a missing padding; re-pad before decoding.
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error as exc:
            raise self.fail("invalid base64 in byte sequence") from exc


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse a Dictionary field value (several field lines must already be joined by ', ')."""
    parser = _Parser(text.strip(" \t"))
    result: dict[str, Member] = {}
    if not parser.s:
        return result
    while True:
        name = parser.key()
        if parser.peek() == "=":
            parser.i += 1
            result[name] = parser.member()
        else:
            result[name] = Item(True, parser.params())
        parser.skip(" \t")
        if not parser.peek():
            return result
        if parser.peek() != ",":
            raise parser.fail("expected ',' between dictionary members")
        parser.i += 1
        parser.skip(" \t")
        if not parser.peek():
            raise parser.fail("trailing comma")


def serialize_bare_item(value: BareItem) -> str:
    """Serialise one bare item (booleans before integers: bool is an int in Python)."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _INT_MAX:
            raise StructuredFieldError(f"integer out of range: {value}")
        return str(value)
    if isinstance(value, float):
        text = f"{round(value, 3):.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        if not value or value[0] not in _TOKEN_FIRST or any(c not in _TOKEN_REST for c in value):
            raise StructuredFieldError(f"invalid token {value!r}")
        return str(value)
    if any(not " " <= c <= "~" for c in value):
        raise StructuredFieldError(f"string has characters outside printable ASCII: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_key(name: str) -> str:
    if not name or name[0] not in _KEY_FIRST or any(c not in _KEY_REST for c in name):
        raise StructuredFieldError(f"invalid key {name!r}")
    return name


def serialize_params(params: Params) -> str:
    """Serialise parameters (';key' for true booleans, ';key=value' otherwise)."""
    out = []
    for name, value in params.items():
        if value is True:
            out.append(f";{_check_key(name)}")
        else:
            out.append(f";{_check_key(name)}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_member(member: Member) -> str:
    """Serialise an item or an inner list, parameters included."""
    if isinstance(member, InnerList):
        inner = " ".join(serialize_member(item) for item in member.items)
        return f"({inner}){serialize_params(member.params)}"
    return serialize_bare_item(member.value) + serialize_params(member.params)


def serialize_dictionary(members: dict[str, Member]) -> str:
    """Serialise a Dictionary field value."""
    out = []
    for name, member in members.items():
        if isinstance(member, Item) and member.value is True:
            out.append(_check_key(name) + serialize_params(member.params))
        else:
            out.append(f"{_check_key(name)}={serialize_member(member)}")
    return ", ".join(out)
