"""Custom emoji shown inline, as Mastodon does: every :shortcode: in the text of a
comment (never inside a tag or an attribute) becomes the emoji's image."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from html.parser import HTMLParser
from typing import Any

from markupsafe import Markup

_CODE = re.compile(r":([A-Za-z0-9_+\-]{1,64}):")
# Elements nh3 lets through that have no end tag.
_VOID = frozenset({"br", "hr", "img", "wbr"})


def _img(emoji: dict[str, Any]) -> str:
    code = escape(f":{emoji['shortcode']}:")
    parts = [f'<img class="fc-emoji" src="{escape(emoji["url"])}"']
    if emoji.get("url_2x"):
        parts.append(f' srcset="{escape(emoji["url_2x"])} 2x"')
    parts.append(f' alt="{code}" title="{code}"')
    if emoji.get("width") and emoji.get("height"):
        parts.append(f' width="{int(emoji["width"])}" height="{int(emoji["height"])}"')
    parts.append(' draggable="false" referrerpolicy="no-referrer">')
    return "".join(parts)


def _replace(text: str, table: dict[str, str]) -> str:
    """Escaped text with each known :shortcode: replaced by its image."""
    out: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        img = table.get(match[1])
        if img is None:
            continue
        out.append(escape(text[last:match.start()], quote=False))
        out.append(img)
        last = match.end()
    out.append(escape(text[last:], quote=False))
    return "".join(out)


def _table(emojis: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    return {e["shortcode"]: _img(e) for e in emojis or () if e.get("url")}


def emojify_text(text: str | None, emojis: Sequence[dict[str, Any]] | None) -> Markup:
    """Plain text (a name, a content warning), escaped, with its emoji."""
    return Markup(_replace(text or "", _table(emojis)))


class _Rewriter(HTMLParser):
    def __init__(self, table: dict[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.table = table
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = "".join(f' {name}="{escape(value or "")}"' for name, value in attrs)
        self.out.append(f"<{tag}{attributes}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(_replace(data, self.table))


def emojify_html(html: str | None, emojis: Sequence[dict[str, Any]] | None) -> Markup:
    """Sanitised HTML (a comment's content) with its emoji; unchanged without any."""
    table = _table(emojis)
    if not table or not html or ":" not in html:
        return Markup(html or "")
    rewriter = _Rewriter(table)
    rewriter.feed(html)
    rewriter.close()
    return Markup("".join(rewriter.out))
