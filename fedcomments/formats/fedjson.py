"""fedcomments' own export (`fedcomments export`), read back as a stream with ijson.

The document (described in the README) is `{format, version, exported_at, server,
public_only, posts: [...], comments: [...]}`; posts come first, so each comment finds its
post's title and date. Every comment carries its `key` (the system, site and id it was
first stored under) and its parent's, so threads survive any number of moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import ijson

from fedcomments.formats.records import (
    ActorRecord,
    BadExport,
    CommentRecord,
    PostReactions,
    PostRecord,
    ReactionRecord,
    Records,
    Skipped,
)
from fedcomments.model import Attachment, ImportKey
from fedcomments.names import canonical_url

FORMAT = "fedcomments-export"
VERSION = 1
SOURCE = "fedcomments"


def read(path: Path) -> Records:
    try:
        with path.open("rb") as f:
            yield from _read(f, str(path))
    except ijson.JSONError as exc:
        detail = " ".join(str(exc).split())[:120]
        raise BadExport(f"{path}: not valid JSON ({detail})") from None
    except OSError as exc:
        raise BadExport(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read(f: IO[bytes], where: str) -> Iterator[CommentRecord | PostReactions | Skipped]:
    posts: dict[str, PostRecord] = {}
    header: dict[str, Any] = {}
    builder: ijson.ObjectBuilder | None = None
    for prefix, event, value in ijson.parse(f):
        if builder is not None:
            builder.event(event, value)
            if prefix in ("posts.item", "comments.item") and event == "end_map":
                item = builder.value
                builder = None
                if prefix == "posts.item":
                    post, reactions = _post(item, where)
                    posts[post.permalink] = post
                    if reactions:
                        yield PostReactions(post, reactions)
                else:
                    yield _comment(item, posts, where)
            continue
        if prefix in ("format", "version") and event in ("string", "number"):
            header[prefix] = value
        elif prefix in ("posts.item", "comments.item") and event == "start_map":
            if header.get("format") != FORMAT:
                raise BadExport(f"{where}: not a fedcomments export (no \"format\": "
                                f"\"{FORMAT}\" before its posts)")
            if not isinstance(header.get("version"), int) or header["version"] > VERSION:
                raise BadExport(f"{where}: export version {header.get('version')!r}; this "
                                f"fedcomments reads version {VERSION} and older")
            builder = ijson.ObjectBuilder()
            builder.event(event, value)
    if header.get("format") != FORMAT:
        raise BadExport(f"{where}: not a fedcomments export")


def _str(data: dict[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadExport(f"{where}: {name!r} must be a string, got {value!r}")
    return value


def _date(data: dict[str, Any], name: str, where: str, *, required: bool = False
          ) -> datetime | None:
    text = _str(data, name, where, required=required)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadExport(f"{where}: {name!r} is not an ISO-8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise BadExport(f"{where}: {name!r} has no time zone: {text!r}")
    return parsed


def _key(data: Any, where: str) -> ImportKey | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k)
                                             for k in ("source", "site", "id")):
        raise BadExport(f"{where}: a key must be {{source, site, id}}, got {data!r}")
    return ImportKey(data["source"], data["site"], data["id"])


def _actor(data: Any, where: str) -> ActorRecord | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadExport(f"{where}: an actor must be an object")
    raw = _str(data, "id", where, required=True)
    assert raw is not None
    # Spelled as ids from the network are (names.canonical_url), so an imported author
    # meets its later activities and its domain's block.
    ap_id = canonical_url(raw)
    if ap_id is None:
        raise BadExport(f"{where}: actor id {raw[:200]!r} is not an http(s) URL")
    return ActorRecord(ap_id=ap_id, type=_str(data, "type", where) or "Person",
                       **{name: _str(data, name, where) for name in (
                           "username", "name", "url", "icon", "inbox", "shared_inbox",
                           "followers_url")})


def _reactions(data: Any, where: str) -> tuple[ReactionRecord, ...]:
    if not isinstance(data, list):
        raise BadExport(f"{where}: reactions must be a list")
    found = []
    for r in data:
        actor = _actor(r.get("actor") if isinstance(r, dict) else None, where)
        kind = r.get("type") if isinstance(r, dict) else None
        created = _date(r, "created", where, required=True) if isinstance(r, dict) else None
        if actor is None or kind not in ("like", "announce") or created is None:
            raise BadExport(f"{where}: a reaction must be {{type: like|announce, actor, "
                            "created}}")
        found.append(ReactionRecord(kind, actor, _str(r, "ap_id", where), created))
    return tuple(found)


def _post(data: dict[str, Any], where: str) -> tuple[PostRecord, tuple[ReactionRecord, ...]]:
    url = _str(data, "url", where, required=True)
    assert url is not None
    post = PostRecord(permalink=url, title=_str(data, "title", where) or url,
                      published=_date(data, "published", where),
                      deleted=_date(data, "deleted", where))
    return post, _reactions(data.get("reactions", []), where)


def _comment(data: dict[str, Any], posts: dict[str, PostRecord], where: str
             ) -> CommentRecord | Skipped:
    key = _key(data.get("key"), where)
    url = _str(data, "post", where, required=True)
    assert key is not None and url is not None
    post = posts.get(url) or PostRecord(permalink=url, title=url)
    author = data.get("author") or {}
    if not isinstance(author, dict):
        raise BadExport(f"{where}: comment {key.id}: author must be an object")
    origin = data.get("origin", "local")
    visibility = data.get("visibility", "public")
    status = data.get("status", "approved")
    if (origin not in ("local", "owner", "remote")
            or visibility not in ("public", "unlisted", "followers", "direct")
            or status not in ("approved", "pending", "rejected", "deleted")):
        raise BadExport(f"{where}: comment {key.id}: unknown origin, visibility or status")
    actor = _actor(author.get("actor"), where)
    if origin == "remote" and (actor is None or not data.get("ap_id")):
        return Skipped("fediverse comment without its actor or id")
    published = _date(data, "published", where, required=True)
    assert published is not None
    return CommentRecord(
        key=key, post=post, published=published,
        content=_str(data, "content", where) or "", text_format="html", status=status,
        parent=_key(data.get("parent"), where),
        author_name=_str(author, "name", where), author_email=_str(author, "email", where),
        author_website=_str(author, "website", where),
        origin=origin, visibility=visibility, ap_id=_str(data, "ap_id", where),
        url=_str(data, "url", where), in_reply_to=_str(data, "in_reply_to", where),
        actor=actor, summary=_str(data, "summary", where),
        sensitive=data.get("sensitive") is True, language=_str(data, "language", where),
        updated=_date(data, "updated", where),
        attachments=_attachments(data.get("attachments") or [], where),
        mentions=tuple(m for m in data.get("mentions") or [] if isinstance(m, str)),
        reactions=_reactions(data.get("reactions", []), where),
    )


def _attachments(data: Any, where: str) -> tuple[Attachment, ...]:
    if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
        raise BadExport(f"{where}: attachments must be a list of objects")
    return tuple(Attachment(url=str(a.get("url") or ""),
                            media_type=_str(a, "media_type", where), name=_str(a, "name", where))
                 for a in data if isinstance(a.get("url"), str))
