"""Which image URLs a thread's JSON shows: our own /media/ files when images are proxied
(only those already made; the rest are asked for and shown as placeholders meanwhile), or
the remote URLs themselves when they are hot-linked. Pure: the media rows come with the
thread's read, the clock is passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fedcomments.media.decoder import ACCEPTED, SHOWN, media_type_of
from fedcomments.store.media import MediaRow, ThreadMedia

#: Attachments of one comment shown as thumbnails (Mastodon allows four images a post).
MAX_THUMBNAILS = 4

ImageCheck = Callable[[str | None], str | None]


def media_path(digest: str, box: int, ext: str) -> str:
    """The path a re-encoded image is served at."""
    return f"/media/{digest}-{box}.{ext}"


def is_thumbnail_type(media_type: str | None) -> bool:
    """Attachments worth a thumbnail: the raster images the decoder reads (never SVG,
    which can carry script; no AVIF or HEIC, which it would fetch only to refuse)."""
    return media_type_of(media_type or "") in ACCEPTED


class Pictures:
    """The images of one rendering, and (when proxied) the ones it wanted but lacked."""

    def __init__(self, image: ImageCheck, media: ThreadMedia | None = None, *,
                 proxy: bool = False, base_url: str = "", now: datetime | None = None) -> None:
        #: The hot-linking rule (an http(s) URL the page policy allows) for proxy = false.
        self.image = image
        self.media = media or ThreadMedia()
        self.proxy = proxy
        self.base_url = base_url
        self.now = now
        #: (url, kind) of images a proxied rendering showed placeholders for and that are
        #: due to be fetched.
        self.wanted: set[tuple[str, str]] = set()

    def _made(self, row: MediaRow | None, url: str, kind: str) -> bool:
        if row is not None and row.ready:
            return True
        if row is None or self.now is None or row.due(self.now):
            self.wanted.add((url, kind))
        return False

    def _url(self, row: MediaRow, box: int) -> str:
        assert row.digest is not None
        return self.base_url + media_path(row.digest, box, row.ext or "webp")

    def avatar(self, url: str | None, place: str = "avatar") -> tuple[str | None, str | None]:
        """(1×, 2×) URLs of an avatar shown beside a comment ("avatar") or in a facepile
        ("face"); (None, None) shows the initials."""
        checked = self.image(url)
        if checked is None:
            return None, None
        if not self.proxy:
            return checked, None
        row = self.media.avatars.get(checked)
        if not self._made(row, checked, "avatar"):
            return None, None
        assert row is not None
        one, two = SHOWN[place]
        return self._url(row, one), self._url(row, two)

    def _emojis(self, found: list[tuple[str, MediaRow]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for code, row in found:
            checked = self.image(row.url)
            if checked is None:
                continue
            if not self.proxy:
                out.append({"shortcode": code, "url": checked, "url_2x": None,
                            "width": None, "height": None})
            elif self._made(row, checked, "emoji"):
                one, two = SHOWN["emoji"]
                out.append({"shortcode": code, "url": self._url(row, one),
                            "url_2x": self._url(row, two), "width": row.width,
                            "height": row.height})
        return out

    def actor_emojis(self, actor_id: int) -> list[dict[str, Any]]:
        """The custom emoji of an actor's display name."""
        return self._emojis(self.media.actor_emojis.get(actor_id, []))

    def comment_emojis(self, comment_id: int) -> list[dict[str, Any]]:
        """The custom emoji of a comment's content (and content warning)."""
        return self._emojis(self.media.comment_emojis.get(comment_id, []))

    def thumbnail(self, comment_id: int, url: str) -> dict[str, Any] | None:
        """A thumbnail of an attachment (proxied images only), linking to the original."""
        if not self.proxy:
            return None
        row = self.media.thumbnails.get(comment_id, {}).get(url)
        if row is None or self.image(url) is None or not self._made(row, url, "thumbnail"):
            return None
        one, two = SHOWN["thumbnail"]
        return {"url": self._url(row, one), "url_2x": self._url(row, two),
                "width": row.width, "height": row.height}
