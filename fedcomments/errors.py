"""Typed failures shared by every layer; each maps to one HTTP status or CLI exit code."""

from __future__ import annotations


class FedcommentsError(Exception):
    """Base of every error this package raises on purpose."""

    #: HTTP status a request boundary answers with when this error escapes a service.
    http_status: int = 500
    #: CLI exit code: 2 for bad input or usage, 1 for runtime failures.
    exit_code: int = 1


class ConfigError(FedcommentsError):
    """The configuration file is missing, malformed or has a wrong value."""

    exit_code = 2


class InvalidInput(FedcommentsError):
    """A caller gave a value we refuse (bad URL, bad domain, unknown id format …)."""

    http_status = 400
    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(FedcommentsError):
    """The thing asked for does not exist (or is not visible to this caller)."""

    http_status = 404
    exit_code = 2


class Gone(FedcommentsError):
    """The thing existed and was deleted; AS clients get a Tombstone."""

    http_status = 410
    exit_code = 2


class Forbidden(FedcommentsError):
    """The caller (or its domain) is refused."""

    http_status = 403
    exit_code = 2


class Unauthorized(FedcommentsError):
    """Authentication is missing or wrong."""

    http_status = 401
    exit_code = 2


class ProtocolError(FedcommentsError):
    """A remote document is not valid ActivityStreams for what we need."""

    http_status = 400


class RemoteError(FedcommentsError):
    """A remote fetch failed: refused address, timeout, size cap, bad status, bad type."""

    http_status = 502


class FeedError(RemoteError):
    """A blog feed could not be used: not RSS, Atom or JSON Feed, malformed, or refused."""
