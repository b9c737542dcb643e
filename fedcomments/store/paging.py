"""Keyset paging of listings: the rows after the last one shown, one more than asked for
to know whether another page follows."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from fedcomments.paging import Key

T = TypeVar("T")


def after(columns: Sequence[str], descending: bool) -> str:
    """`(a, b) < (?, ?)`: rows past the key in the listing's order (a row value, so SQLite
    walks the index from the key on)."""
    marks = ", ".join("?" for _ in columns)
    return f"({', '.join(columns)}) {'<' if descending else '>'} ({marks})"


def split(rows: list[sqlite3.Row], limit: int, build: Callable[[sqlite3.Row], T],
          key: Callable[[sqlite3.Row], Key]) -> tuple[list[T], Key | None]:
    """The page's items, and the key of its last row when more rows follow."""
    more = len(rows) > limit
    rows = rows[:limit]
    return [build(r) for r in rows], (key(rows[-1]) if more and rows else None)
