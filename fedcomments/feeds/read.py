"""The blog's feed (RSS 2.0, Atom 1.0 through feedparser; JSON Feed 1.0/1.1 through json,
strictly checked) as entries that can become posts: permalink, id, title, plain-text
excerpt, hashtags, image and date. Pure: bytes in, entries out."""

from __future__ import annotations

import calendar
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import defusedxml
import defusedxml.ElementTree
import feedparser
import nh3

from fedcomments.errors import FeedError

JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
          "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.1")
#: The excerpt a post carries (its `summary`): feeds often put the whole article there.
EXCERPT = 500
MAX_TITLE = 500
MAX_TAGS = 30
MAX_URL = 2048


@dataclass(frozen=True)
class FeedEntry:
    """One entry of the feed; `problem` says why it cannot become a post (else None)."""

    id: str
    permalink: str | None
    title: str
    summary: str = ""
    tags: tuple[str, ...] = ()
    image: str | None = None
    published: datetime | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Feed:
    #: "rss20", "atom10", "json1.1" …
    format: str
    title: str
    entries: tuple[FeedEntry, ...]


def parse_feed(body: bytes, url: str, content_type: str = "") -> Feed:
    """Read a feed fetched from `url` (relative links resolve against it); FeedError when it
    is none of the three formats."""
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return _json_feed(body, url)
    return _xml_feed(body, url, content_type)


# --- RSS and Atom ---------------------------------------------------------------------------


def _xml_feed(body: bytes, url: str, content_type: str) -> Feed:
    try:
        # Entity declarations (the "billion laughs") and external references are refused
        # before the feed parser sees the document; DTDs without them are fine (RSS 0.91
        # feeds still carry Netscape's).
        defusedxml.ElementTree.fromstring(body, forbid_dtd=False, forbid_entities=True,
                                          forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise FeedError(f"feed {url}: refused XML ({type(exc).__name__})") from None
    except Exception:  # malformed XML: feedparser's lenient parser may still read it
        pass
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or "xml" not in media:
        # Static hosts serve feeds as text/plain or octet-stream; the content decides.
        content_type = "application/xml"
    parsed = feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=True,
                              response_headers={"content-location": url,
                                                "content-type": content_type})
    version = str(parsed.get("version") or "")
    if not version:
        problem = parsed.get("bozo_exception")
        raise FeedError(f"feed {url}: not an RSS or Atom feed"
                        + (f" ({problem})" if problem else ""))
    title = _text(str(parsed.feed.get("title", "")))
    return Feed(version, title, tuple(_xml_entry(e, url) for e in parsed.entries))


def _xml_entry(e: Any, feed_url: str) -> FeedEntry:
    permalink = _absolute(e.get("link"), feed_url)
    entry_id = str(e.get("id") or "") or permalink or ""
    summary_html = e.get("summary") or ""
    if not summary_html and e.get("content"):
        summary_html = e["content"][0].get("value", "")
    when = e.get("published_parsed") or e.get("updated_parsed")
    published = datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None
    tags = [str(t.get("term") or t.get("label") or "") for t in e.get("tags") or []]
    images: list[Any] = [m.get("url") for m in e.get("media_thumbnail") or []]
    images += [m.get("url") for m in e.get("media_content") or []
               if m.get("medium") == "image" or str(m.get("type", "")).startswith("image/")]
    images += [m.get("href") for m in e.get("enclosures") or []
               if str(m.get("type", "")).startswith("image/")]
    return _entry(entry_id, permalink, str(e.get("title") or ""), summary_html, tags, images,
                  published, feed_url)


# --- JSON Feed ------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_feed(body: bytes, url: str) -> Feed:
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise FeedError(f"feed {url}: invalid JSON") from None
    if not isinstance(doc, dict):
        raise FeedError(f"feed {url}: a JSON Feed is an object")
    version = doc.get("version")
    if version not in JSON_FEED_VERSIONS:
        raise FeedError(f"feed {url}: not a JSON Feed (version {version!r})")
    if not isinstance(doc.get("title"), str):
        raise FeedError(f"feed {url}: JSON Feed without a title string")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError(f"feed {url}: JSON Feed without an items list")
    home = doc.get("home_page_url")
    base = home if isinstance(home, str) else url
    entries = tuple(_json_item(item, base, url) for item in items)
    return Feed("json" + version.rsplit("/", 1)[1], _text(doc["title"]), entries)


def _json_item(item: Any, base: str, feed_url: str) -> FeedEntry:
    if not isinstance(item, dict):
        return FeedEntry("", None, "", problem="item is not an object")
    raw_id = item.get("id")
    # JSON Feed 1.1: an id given as a number is read as a string.
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id:
        return FeedEntry("", None, "", problem="item without an id")
    strings = ("url", "title", "summary", "content_html", "content_text", "image",
               "banner_image", "date_published", "date_modified")
    for name in strings:
        if name in item and not isinstance(item[name], str):
            return FeedEntry(raw_id, None, "", problem=f"item {name} is not a string")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return FeedEntry(raw_id, None, "", problem="item tags is not a list of strings")
    if "content_html" not in item and "content_text" not in item:
        return FeedEntry(raw_id, None, "", problem="item without content_html or content_text")
    published = None
    stamp = item.get("date_published") or item.get("date_modified")
    if stamp:
        try:
            published = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            published = None
        if published is None or published.tzinfo is None:
            return FeedEntry(raw_id, None, "", problem=f"item date {stamp!r} is not RFC 3339")
    permalink = _absolute(item.get("url"), base)
    summary = item.get("summary") or item.get("content_html") or html.escape(
        item.get("content_text", ""))
    return _entry(raw_id, permalink, item.get("title", ""), summary, tags,
                  [item.get("image"), item.get("banner_image")], published, feed_url)


# --- shared ---------------------------------------------------------------------------------


def _entry(entry_id: str, permalink: str | None, title: str, summary_html: str,
           tags: list[str], images: list[Any], published: datetime | None, base: str
           ) -> FeedEntry:
    summary = _excerpt(_text(summary_html), EXCERPT)
    title = _text(title) or _excerpt(summary, 80)
    image = next((u for u in (_absolute(i, permalink or base) for i in images) if u), None)
    entry = FeedEntry(entry_id[:MAX_URL], permalink, _excerpt(title, MAX_TITLE), summary,
                      hashtags(tags), image, published)
    if permalink is None:
        return _with_problem(entry, "no http(s) link to the post")
    if not title:
        return _with_problem(entry, "no title")
    return entry


def _with_problem(entry: FeedEntry, problem: str) -> FeedEntry:
    return FeedEntry(entry.id, entry.permalink, entry.title, problem=problem)


def _absolute(value: Any, base: str) -> str | None:
    """An absolute http(s) URL without a fragment, resolved against `base`; else None."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL:
        return None
    try:
        parts = urlsplit(urljoin(base, value.strip()))
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def _text(markup: str) -> str:
    """HTML (or text with entities) as one line of plain text."""
    if "<" in markup or "&" in markup:
        markup = html.unescape(nh3.clean(markup, tags=set()))
    return " ".join(markup.split())


def _excerpt(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:") + "…"


def hashtags(terms: list[str]) -> tuple[str, ...]:
    """Feed categories as hashtags: "machine learning" becomes machineLearning (words
    joined, each after the first capitalised, as the WordPress ActivityPub plugin writes
    multi-word tags); what has no letters or digits is dropped."""
    seen: dict[str, str] = {}
    for term in terms:
        words = re.findall(r"\w+", term)
        if not words:
            continue
        tag = words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
        tag = tag[:100]
        seen.setdefault(tag.casefold(), tag)
    return tuple(seen.values())[:MAX_TAGS]
