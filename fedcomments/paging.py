"""Cursor paging shared by every listing: an opaque cursor names the last row shown, so a
page follows on from it however many rows were added or removed meanwhile."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fedcomments.errors import InvalidInput

T = TypeVar("T")
Key = tuple[str | int, ...]

#: Rows one page may hold, for every listing (the CLI's --all asks for pages of this size).
MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the cursor of the next (None: this was the last)."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(listing: str, key: Key) -> str:
    """The sort key of the last row shown, named after its listing, as URL-safe text."""
    raw = json.dumps([listing, *key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None, shape: Sequence[type]) -> Key | None:
    """The key a cursor of `listing` carries, each part of the type `shape` says; a cursor
    of another listing, or text that is no cursor at all, is bad input."""
    if cursor is None or cursor == "":
        return None
    error = InvalidInput(f"cursor: not a cursor of this {listing} listing", field="cursor")
    if len(cursor) > 2048:
        raise error
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise error from None
    if (not isinstance(data, list) or len(data) != len(shape) + 1 or data[0] != listing
            or not all(type(v) is t and _storable(v)
                       for v, t in zip(data[1:], shape, strict=True))):
        raise error
    return tuple(data[1:])


def _storable(value: object) -> bool:
    """A key part the database can compare: a 64-bit integer, or text that is valid
    Unicode (JSON lets a hand-made cursor carry a lone surrogate or a 30-digit number)."""
    if isinstance(value, int):
        return -(1 << 63) <= value < (1 << 63)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
    return True


def parse_limit(value: object, *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    """A page size from the CLI or a query string: a whole number from 1 to `maximum`."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= maximum:
        raise InvalidInput(f"limit: between 1 and {maximum}", field="limit")
    return int(text)
