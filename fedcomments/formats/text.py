"""A source's comment text made HTML the way that system shows it (sanitised afterwards,
like every comment): WordPress's paragraphs and bare links, Isso's Markdown."""

from __future__ import annotations

import functools
import html
import re

from markdown_it import MarkdownIt

# WordPress (wpautop) leaves these alone instead of wrapping them in a paragraph.
_BLOCK_START = re.compile(r"\s*<(p|div|blockquote|ul|ol|li|pre|h[1-6]|table|hr)[\s>/]", re.I)
_TAG = re.compile(r"(<[^>]*>)")
_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,:;!?'\")"


def wordpress_html(text: str) -> str:
    """WordPress comment text as its themes show it: blank lines part paragraphs, a single
    newline is a line break (wpautop), and bare URLs become links (make_clickable)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    out = []
    for block in re.split(r"\n[ \t]*\n", text):
        block = block.strip("\n")
        if not block.strip():
            continue
        if _BLOCK_START.match(block):
            out.append(block)
        else:
            out.append("<p>" + block.replace("\n", "<br>\n") + "</p>")
    return link_bare_urls("\n".join(out))


@functools.cache
def _markdown() -> MarkdownIt:
    # Isso renders with Misaka: CommonMark-like, with strikethrough and autolinks; raw HTML
    # passes through to its sanitiser, as it does to ours.
    return MarkdownIt("commonmark", {"html": True}).enable("strikethrough")


def markdown_html(text: str) -> str:
    """Isso's Markdown source as HTML, bare URLs linked as Isso's autolink does."""
    return link_bare_urls(_markdown().render(text).strip())


def link_bare_urls(fragment: str) -> str:
    """Link URLs written as text (never inside a tag, nor inside a link already)."""
    parts = _TAG.split(fragment)
    inside_link = 0
    for i, part in enumerate(parts):
        if i % 2:
            lower = part.lower()
            if lower.startswith("<a") and (len(part) < 3 or not part[2].isalnum()):
                inside_link += 1
            elif lower.startswith("</a"):
                inside_link = max(0, inside_link - 1)
        elif not inside_link and "://" in part:
            parts[i] = _URL.sub(_link, part)
    return "".join(parts)


def _link(match: re.Match[str]) -> str:
    url = match.group()
    tail = ""
    while url and url[-1] in _TRAILING and not (url[-1] == ")" and url.count("(") >
                                                 url.count(")") - 1):
        tail = url[-1] + tail
        url = url[:-1]
    if len(url) <= len("https://"):
        return match.group()
    # The text is already HTML: `&amp;` in it stays as written.
    href = html.escape(html.unescape(url), quote=True)
    return f'<a href="{href}">{url}</a>{tail}'
