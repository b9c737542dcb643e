"""Atom 1.0 documents (RFC 4287) built with ElementTree: the feeds of comments. Pure:
values in, bytes out; every text is escaped by the XML library, never by hand."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
#: Characters XML 1.0 cannot carry at all (C0 controls but tab/newline/CR, surrogates,
#: U+FFFE/U+FFFF): ElementTree writes them as they are, which no parser then reads.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Person:
    name: str
    uri: str | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    #: Where the entry is read (rel="alternate").
    link: str
    author: Person
    published: str
    updated: str
    #: Sanitised HTML, carried as escaped text (type="html").
    content_html: str
    #: A content warning, shown as the entry's summary.
    summary: str | None = None
    #: Where the entry came from, when elsewhere (rel="via").
    via: str | None = None


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    #: The feed's own URL (rel="self") and the page it describes (rel="alternate").
    self_url: str
    alternate: str
    updated: str
    author: Person
    subtitle: str | None = None
    entries: list[Entry] = field(default_factory=list)


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def _person(parent: ET.Element, tag: str, person: Person) -> None:
    element = _add(parent, tag)
    _add(element, "name", person.name or "Anonymous")
    if person.uri:
        _add(element, "uri", person.uri)


def atom_bytes(feed: Feed, generator: str = "fedcomments") -> bytes:
    """The feed as a UTF-8 Atom document."""
    # Unprefixed names under the default namespace, declared once on the root (what feed
    # readers expect to see: <feed xmlns="http://www.w3.org/2005/Atom">).
    root = ET.Element("feed", xmlns=NS)
    _add(root, "id", feed.id)
    _add(root, "title", feed.title)
    if feed.subtitle:
        _add(root, "subtitle", feed.subtitle)
    _add(root, "updated", feed.updated)
    _add(root, "link", rel="self", type=MEDIA_TYPE, href=feed.self_url)
    _add(root, "link", rel="alternate", type="text/html", href=feed.alternate)
    _person(root, "author", feed.author)
    _add(root, "generator", generator)
    for entry in feed.entries:
        item = _add(root, "entry")
        _add(item, "id", entry.id)
        _add(item, "title", entry.title)
        _add(item, "link", rel="alternate", type="text/html", href=entry.link)
        if entry.via:
            _add(item, "link", rel="via", href=entry.via)
        _person(item, "author", entry.author)
        _add(item, "published", entry.published)
        _add(item, "updated", entry.updated)
        if entry.summary:
            _add(item, "summary", entry.summary)
        _add(item, "content", entry.content_html, type="html")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
