"""Custom emoji (`tag` entries of type Emoji, as Mastodon, Misskey and Pleroma send them):
a shortcode that appears as :shortcode: in the text, and the image it stands for."""

from __future__ import annotations

import re
from typing import Any

from fedcomments.ap.parse_values import (
    MAX_TAGS,
    _list,
    _natural,
    _optional_iri,
    _pick_image,
    _types,
)
from fedcomments.ap.types import Emoji

#: Mastodon's shortcodes are [a-zA-Z0-9_]{2,}; Misskey's also allow + and -.
_SHORTCODE = re.compile(r"[A-Za-z0-9_+\-]{1,64}\Z")
#: Emoji kept per object or actor (Mastodon lets a post use any number; a page shows few).
MAX_EMOJIS = 64


def emojis(node: dict[str, Any]) -> tuple[Emoji, ...]:
    """The Emoji tags of an object or actor, one per shortcode (the first wins)."""
    found: dict[str, Emoji] = {}
    for tag in _list(node.get("tag"))[:MAX_TAGS]:
        if not isinstance(tag, dict) or "Emoji" not in _types(tag):
            continue
        # Mastodon spells the name with its colons (":blobcat:"), some servers without.
        code = (_natural(tag, "name")[0] or "").strip().strip(":")
        url = _pick_image(tag.get("icon"))
        if not _SHORTCODE.match(code) or url is None or _optional_iri(url) is None:
            continue
        found.setdefault(code, Emoji(shortcode=code, url=url))
        if len(found) == MAX_EMOJIS:
            break
    return tuple(found.values())
