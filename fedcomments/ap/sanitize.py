"""Remote HTML → safe HTML (nh3 with a Mastodon-like allowlist), HTML → plain text, text → HTML.

nh3 does the security-relevant cleaning; a small rewriter over its well-formed output then
applies Mastodon's transforms (headings, links without a usable href) and the length cap.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from html.parser import HTMLParser

import nh3

_TAGS = frozenset({
    "p", "br", "span", "a", "del", "pre", "code", "em", "strong", "b", "i", "u", "s", "sub",
    "sup", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
})
# Removed together with their content (the text inside is not meant to be read).
_DROP_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "noscript", "svg", "math", "template", "object", "textarea",
    "select", "title",
})
# Microformats and Mastodon's own classes: mentions, hashtags and the link shortening
# ("invisible" prefix, "ellipsis" tail) that Mastodon and GoToSocial put in links.
_CLASSES = frozenset({"h-card", "mention", "hashtag", "u-url", "invisible", "ellipsis"})
# Mastodon's LINK_PROTOCOLS: anything else (javascript:, data:, relative) becomes plain text.
_SCHEMES = frozenset({
    "http", "https", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp", "magnet", "gemini",
})
LINK_REL = "nofollow noopener noreferrer"
TEXT_LINK_REL = "nofollow noopener noreferrer ugc"
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"br"})
_ELLIPSIS = "…"

# Bidi embeddings, overrides, isolates and marks, and the byte-order mark: they let a name
# or handle display as something other than what it is.
_INVISIBLE = dict.fromkeys(map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                    "\u2066\u2067\u2068\u2069\ufeff"))
_BLOCKS = frozenset({
    "p", "br", "div", "li", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
    "tr", "td", "th", "table", "section", "article", "header", "footer", "hr", "dd", "dt",
})
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,:;!?'\""


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "start":
        return value if value.isdigit() and len(value) <= 9 else None
    if attribute == "class":
        kept = [c for c in value.split() if c in _CLASSES]
        return " ".join(kept) or None
    return value


@functools.cache
def _cleaner() -> nh3.Cleaner:
    """Built once on first use: a reusable cleaner halves nh3's cost per call."""
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={"a": {"href"}, "ol": {"start", "reversed"}},
        allowed_classes={"a": set(_CLASSES), "span": set(_CLASSES)},
        attribute_filter=_filter_attribute,
        url_schemes=set(_SCHEMES),
        url_relative="deny",
        link_rel=LINK_REL,
        strip_comments=True,
    )


# Output the rewriter would change: a heading, a link left without its href, a bare
# attribute (`reversed=""`) or an `&nbsp;` it writes as the character. Matching too much
# only costs the slow path; the rewriter is the one that decides, so both paths agree.
_NEEDS_REWRITE = re.compile(r'<h[1-6][\s>]|<a(?![^>]*\shref=)[\s>]|=""|&nbsp;')


def sanitize_html(html_text: str, *, max_length: int = 50_000) -> str:
    """Remote HTML reduced to the allowlist, links made safe, at most ``max_length`` chars."""
    if not html_text:
        return ""
    cleaned = _cleaner().clean(html_text)
    # Most replies are a few paragraphs and links that nh3 already left in final form;
    # re-serialising them in Python would cost ten times the cleaning.
    if len(cleaned) <= max_length and not _NEEDS_REWRITE.search(cleaned):
        return cleaned
    return _Rewriter(max_length).run(cleaned)


class _Rewriter(HTMLParser):
    """Re-serialise nh3's output: Mastodon's transforms, then a length cap on whole tokens."""

    def __init__(self, max_length: int) -> None:
        super().__init__(convert_charrefs=True)
        self._budget = max(max_length, 0)
        self._out: list[str] = []
        self._length = 0
        self._closers: list[str] = []  # what each open element needs to close it
        self._full = False

    def run(self, text: str) -> str:
        self.feed(text)
        self.close()
        return "".join(self._out) + "".join(reversed(self._closers))

    def _room(self) -> int:
        return self._budget - self._length - sum(map(len, self._closers))

    def _emit(self, piece: str) -> None:
        self._out.append(piece)
        self._length += len(piece)

    def _stop(self) -> None:
        if not self._full and self._room() >= len(_ELLIPSIS):
            self._emit(_ELLIPSIS)
        self._full = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._full:
            return
        if tag == "a" and not any(name == "href" for name, _ in attrs):
            opening, closing = "", ""  # Mastodon turns links it cannot follow into their text
        elif tag in _HEADINGS:
            opening, closing = "<p><strong>", "</strong></p>"  # as Mastodon renders headings
        else:
            opening = "<" + tag + "".join(_attribute(n, v) for n, v in attrs) + ">"
            closing = "" if tag in _VOID else "</" + tag + ">"
        # An element is opened only with room left for some of its content.
        needed = len(opening) + len(closing) + (0 if tag in _VOID else len(_ELLIPSIS))
        if needed > self._room():
            self._stop()
            return
        self._emit(opening)
        if tag not in _VOID:
            self._closers.append(closing)

    def handle_endtag(self, tag: str) -> None:
        if self._full or tag in _VOID or not self._closers:
            return
        self._emit(self._closers.pop())

    def handle_data(self, data: str) -> None:
        if self._full:
            return
        escaped = html.escape(data, quote=False)
        if len(escaped) <= self._room():
            self._emit(escaped)
            return
        room = self._room() - len(_ELLIPSIS)
        kept: list[str] = []
        for char in data:
            piece = html.escape(char, quote=False)
            if len(piece) > room:
                break
            kept.append(piece)
            room -= len(piece)
        self._emit("".join(kept))
        self._stop()


def _attribute(name: str, value: str | None) -> str:
    if name == "reversed" or value is None:
        return " " + name
    return f' {name}="{html.escape(value, quote=True)}"'


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(html_text: str) -> str:
    """Text of an HTML fragment: no tags, entities decoded, whitespace collapsed, no controls.

    Blocks and line breaks become spaces; bidi overrides and other control characters are
    removed so a display name cannot reorder the text around it.
    """
    if not html_text:
        return ""
    collector = _TextCollector()
    collector.feed(html_text)
    collector.close()
    text = "".join(collector.parts).translate(_INVISIBLE)
    text = "".join(
        c for c in text if c.isspace() or unicodedata.category(c) != "Cc"
    )
    return " ".join(text.split())


def text_to_html(text: str) -> str:
    """Plain text from the owner or a reader as HTML: paragraphs, line breaks, linked URLs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(_linkify(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs
    )


def _linkify(line: str) -> str:
    out: list[str] = []
    position = 0
    for match in _URL.finditer(line):
        url = match.group()
        # Punctuation after a URL ends the sentence, and a ")" closes the text's parenthesis
        # unless the URL opened one (Wikipedia titles).
        while url and (url[-1] in _TRAILING
                       or (url[-1] == ")" and url.count("(") < url.count(")"))):
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        out.append(html.escape(line[position:match.start()], quote=False))
        href = html.escape(url, quote=True)
        out.append(f'<a href="{href}" rel="{TEXT_LINK_REL}">{html.escape(url, quote=False)}</a>')
        position = match.start() + len(url)
    out.append(html.escape(line[position:], quote=False))
    return "".join(out)
