"""WordPress eXtended RSS (WXR 1.0–1.2, what Tools › Export writes on WordPress and
WordPress.com), read as a stream: each comment is handed on, then dropped, as soon as it
is parsed, so memory stays small whatever the size of the file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from fedcomments.formats.records import (
    MAX_XML_DEPTH,
    BadExport,
    CommentRecord,
    PostRecord,
    Records,
    Skipped,
)
from fedcomments.model import ImportKey
from fedcomments.urls import site_key

SOURCE = "wordpress"
_WP = "{http://wordpress.org/export/"
# Comments of these posts are public on the blog: published posts, pages and (their
# status is "inherit") attachments.
_PUBLIC = ("publish", "inherit")
_STATUS = {"1": "approved", "approve": "approved", "0": "pending", "hold": "pending",
           "spam": "spam", "trash": "trash", "post-trashed": "trash"}
_KINDS = {"": "comment", "comment": "comment", "pingback": "pingback",
          "trackback": "trackback", "webmention": "webmention"}


def read(path: Path) -> Records:
    """Every comment of a WXR file (and what could not be imported, as Skipped)."""
    try:
        with path.open("rb") as f:
            yield from _read(f, str(path))
    except ParseError as exc:
        raise BadExport(f"{path}: not well-formed XML ({exc})") from None
    except DefusedXmlException as exc:
        # Entity declarations (billion laughs) and external references are refused.
        raise BadExport(f"{path}: refused XML construct ({type(exc).__name__})") from None
    except OSError as exc:
        raise BadExport(f"{path}: cannot read ({exc.strerror or exc})") from None


def _name(tag: str) -> str:
    """`wp:comment` for WordPress's namespace (any version), else the local name."""
    if tag.startswith(_WP):
        return "wp:" + tag.rsplit("}", 1)[1]
    return tag.rsplit("}", 1)[-1]


def _read(f: IO[bytes], where: str) -> Iterator[CommentRecord | Skipped]:
    stack: list[Element] = []
    site: str | None = None
    item: dict[str, str] = {}
    for event, elem in iterparse(f, events=("start", "end"), forbid_dtd=True):
        if event == "start":
            if not stack and _name(elem.tag) != "rss":
                raise BadExport(f"{where}: not a WordPress export (WXR): the document is "
                                f"<{_name(elem.tag)}>, not <rss>")
            stack.append(elem)
            if len(stack) > MAX_XML_DEPTH:
                raise BadExport(f"{where}: elements nested more than {MAX_XML_DEPTH} deep")
            continue
        stack.pop()
        depth, name = len(stack), _name(elem.tag)
        if depth == 2:  # a child of <channel>
            if name in ("wp:base_blog_url", "link") and site is None and (elem.text or "").strip():
                site = site_key(elem.text or "")
            if name == "item":
                item = {}
            stack[-1].remove(elem)
        elif depth == 3 and _name(stack[1].tag) == "channel" and _name(stack[-1].tag) == "item":
            if name == "wp:comment":
                yield _comment(elem, item, site, where)
            else:
                item.setdefault(name, (elem.text or "").strip())
            stack[-1].remove(elem)
    if site is None:
        raise BadExport(f"{where}: not a WordPress export (WXR): no <channel> with the site's "
                        "address")


def _text(elem: Element, name: str) -> str:
    for child in elem:
        if _name(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:  # "0000-00-00 00:00:00" in old exports, or nothing
        return None


def _local(value: str, item: dict[str, str]) -> datetime | None:
    """A time in the blog's own time zone (WordPress's comment_date, all that comments
    brought in by some old importers have: their GMT date is 0000-00-00) in UTC. WXR does
    not name the zone; the post's two dates give its offset (the DST of the post's day).
    Without them (or with an offset no time zone has) the time is taken as UTC."""
    local = _date(value)
    post_local, post_gmt = _date(item.get("wp:post_date", "")), _date(item.get(
        "wp:post_date_gmt", ""))
    if local is None or post_local is None or post_gmt is None:
        return local
    offset = post_local - post_gmt
    return local - offset if abs(offset) <= timedelta(hours=14) else local


def _post(item: dict[str, str]) -> PostRecord | None:
    link = item.get("link", "")
    if not link.lower().startswith(("https://", "http://")):
        return None
    published = _date(item.get("wp:post_date_gmt", "")) or _date(item.get("wp:post_date", ""))
    if published is None and item.get("pubDate"):
        try:
            published = parsedate_to_datetime(item["pubDate"])
        except (TypeError, ValueError):
            published = None
    return PostRecord(permalink=link, title=item.get("title") or link, published=published)


def _comment(elem: Element, item: dict[str, str], site: str | None, where: str
             ) -> CommentRecord | Skipped:
    fields: dict[str, Any] = {_name(c.tag): (c.text or "") for c in elem}
    comment_id = fields.get("wp:comment_id", "").strip()
    if not comment_id or site is None:
        raise BadExport(f"{where}: a <wp:comment> without <wp:comment_id> (or before the "
                        "channel's address)")
    if item.get("wp:status", "publish") not in _PUBLIC:
        return Skipped("post not published")
    if item.get("wp:post_password"):
        # WordPress shows these comments only to readers who give the post's password.
        return Skipped("post password-protected")
    post = _post(item)
    if post is None:
        return Skipped("post without a permalink")
    published = (_date(fields.get("wp:comment_date_gmt", "").strip())
                 or _local(fields.get("wp:comment_date", "").strip(), item))
    if published is None:
        raise BadExport(f"{where}: comment {comment_id} has no valid date")
    parent = fields.get("wp:comment_parent", "0").strip()
    return CommentRecord(
        key=ImportKey(SOURCE, site, comment_id),
        post=post,
        published=published,
        content=fields.get("wp:comment_content", ""),
        text_format="wordpress",
        status=_STATUS.get(fields.get("wp:comment_approved", "").strip(), "pending"),
        kind=_KINDS.get(fields.get("wp:comment_type", "").strip(), "comment"),
        parent=ImportKey(SOURCE, site, parent) if parent not in ("", "0") else None,
        author_name=fields.get("wp:comment_author", "").strip() or None,
        author_email=fields.get("wp:comment_author_email", "").strip() or None,
        author_website=fields.get("wp:comment_author_url", "").strip() or None,
    )
