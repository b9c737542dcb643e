"""Shared pieces of the HTTP client: settings, the signer type, results and failures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fedcomments import __version__
from fedcomments.errors import RemoteError

#: (method, url, headers about to be sent, body) -> headers to add (Date, Signature, Digest …)
Signer = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]

AS2_PROFILE = "https://www.w3.org/ns/activitystreams"
AS2_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS2_PROFILE}"'
AS2_CONTENT_TYPE = "application/activity+json"
MEDIA_ACCEPT = "image/webp, image/png, image/jpeg, image/gif;q=0.8"

@dataclass(frozen=True)
class RemoteSettings:
    """Limits for outbound HTTP; `allow_private_addresses` is for local tests and dev only."""

    allow_private_addresses: bool = False
    connect_timeout: float = 5.0
    #: deadline for a whole call: every redirect hop and the body included
    total_timeout: float = 30.0
    max_response_bytes: int = 1 << 20
    max_redirects: int = 3
    user_agent: str = f"fedcomments/{__version__}"
    #: Threads that sign POSTs. An RSA-2048 signature costs about 0.3 ms of CPU and
    #: `cryptography` releases the GIL while it works, so signing in threads runs on
    #: another core while the event loop does the HTTP of other deliveries. Two, because
    #: a signing thread also waits for the GIL after each signature (the loop holds it
    #: about half the time in a fan-out): one thread sat idle for about a third of it.
    signing_threads: int = 2

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_response_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("max_response_bytes must be positive, max_redirects >= 0")
        if self.signing_threads < 1:
            raise ValueError("signing_threads must be at least 1")


class FetchFailed(RemoteError):
    """Timeout, connection error, bad status, oversized body, wrong Content-Type or bad JSON."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        #: HTTP status when the peer answered; None for timeouts and connection errors
        self.status = status


@dataclass(frozen=True)
class JsonResponse:
    """A JSON object fetched from `url` (the final URL, after redirects)."""

    url: str
    status: int
    data: dict[str, Any]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class MediaResponse:
    """An image's bytes as fetched from `url` (the final URL, after redirects), with the
    Content-Type its server declared (checked against the bytes by the decoder)."""

    url: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Document:
    """A document fetched as bytes from `url` (the final URL, after redirects): status 200
    with its body, or 304 (the copy named by the conditional headers is current)."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class PostResult:
    """What a peer answered to a POST; the delivery layer classifies it."""

    status: int
    headers: Mapping[str, str]
    body_excerpt: str

    @property
    def retry_after(self) -> str | None:
        """The raw Retry-After header (seconds or an HTTP date), if any."""
        return self.headers.get("Retry-After")


def merge_headers(headers: dict[str, str], more: Mapping[str, str]) -> None:
    """Set `more` into `headers`, replacing names case-insensitively."""
    replaced = {name.lower() for name in more}
    for existing in [key for key in headers if key.lower() in replaced]:
        del headers[existing]
    headers.update(more)

