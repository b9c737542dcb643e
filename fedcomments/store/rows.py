"""Conversions between SQLite values and domain values (timestamps, JSON columns)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def ts(value: datetime | None) -> str | None:
    """Store timestamps as fixed-width UTC ISO strings so they sort as text."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def dt_required(value: str) -> datetime:
    result = dt(value)
    assert result is not None
    return result


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default
