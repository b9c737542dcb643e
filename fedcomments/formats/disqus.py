"""Disqus's XML export (Admin › Community › Export), read as a stream. The file lists
every thread first (one per page that ever loaded Disqus), then every post; a post names
its thread and its parent by their `dsq:id`. Threads are kept (link, title, date) until
the end; posts are handed on and dropped one by one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
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

SOURCE = "disqus"
_NS = "{http://disqus.com}"
_DSQ_ID = "{http://disqus.com/disqus-internals}id"


def read(path: Path) -> Records:
    """Every post (comment) of a Disqus export (and what could not be imported)."""
    try:
        with path.open("rb") as f:
            yield from _read(f, str(path))
    except ParseError as exc:
        raise BadExport(f"{path}: not well-formed XML ({exc})") from None
    except DefusedXmlException as exc:
        raise BadExport(f"{path}: refused XML construct ({type(exc).__name__})") from None
    except OSError as exc:
        raise BadExport(f"{path}: cannot read ({exc.strerror or exc})") from None


def _child(elem: Element, name: str) -> Element | None:
    return elem.find(_NS + name)


def _text(elem: Element | None, name: str) -> str:
    found = None if elem is None else elem.find(_NS + name)
    return (found.text or "").strip() if found is not None else ""


def _date(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Disqus writes UTC, with or without the Z.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _read(f: IO[bytes], where: str) -> Iterator[CommentRecord | Skipped]:
    root: Element | None = None
    depth = 0
    threads: dict[str, tuple[PostRecord | None, str]] = {}
    for event, elem in iterparse(f, events=("start", "end"), forbid_dtd=True):
        if event == "start":
            if root is None:
                if elem.tag != _NS + "disqus":
                    raise BadExport(f"{where}: not a Disqus export: the document is "
                                    f"<{elem.tag.rsplit('}', 1)[-1]}>, not <disqus>")
                root = elem
            depth += 1
            if depth > MAX_XML_DEPTH:
                raise BadExport(f"{where}: elements nested more than {MAX_XML_DEPTH} deep")
            continue
        depth -= 1
        if depth != 1 or root is None:
            continue
        if elem.tag == _NS + "thread":
            threads[elem.get(_DSQ_ID, "")] = _thread(elem)
        elif elem.tag == _NS + "post":
            yield _post(elem, threads, where)
        root.remove(elem)
    if root is None:
        raise BadExport(f"{where}: not a Disqus export")


def _thread(elem: Element) -> tuple[PostRecord | None, str]:
    link = _text(elem, "link")
    forum = _text(elem, "forum")
    if not link.lower().startswith(("https://", "http://")):
        return None, forum
    return PostRecord(permalink=link, title=_text(elem, "title") or link,
                      published=_date(_text(elem, "createdAt"))), forum


def _post(elem: Element, threads: dict[str, tuple[PostRecord | None, str]], where: str
          ) -> CommentRecord | Skipped:
    post_id = elem.get(_DSQ_ID, "")
    if not post_id:
        raise BadExport(f"{where}: a <post> without dsq:id")
    thread_ref = _child(elem, "thread")
    thread = threads.get(thread_ref.get(_DSQ_ID, "") if thread_ref is not None else "")
    if thread is None:
        return Skipped("thread not in the export")
    post, forum = thread
    if post is None:
        return Skipped("post without a permalink")
    published = _date(_text(elem, "createdAt"))
    if published is None:
        raise BadExport(f"{where}: post {post_id} has no valid <createdAt>")
    if _text(elem, "isSpam") == "true":
        status = "spam"
    elif _text(elem, "isDeleted") == "true":
        status = "deleted"
    else:
        status = "approved"
    parent = _child(elem, "parent")
    parent_id = parent.get(_DSQ_ID, "") if parent is not None else ""
    author = _child(elem, "author")
    return CommentRecord(
        key=ImportKey(SOURCE, forum, post_id),
        post=post,
        published=published,
        content=_text(elem, "message"),
        text_format="html",
        status=status,
        parent=ImportKey(SOURCE, forum, parent_id) if parent_id else None,
        author_name=_text(author, "name") or _text(author, "username") or None,
        author_email=_text(author, "email") or None,
    )
