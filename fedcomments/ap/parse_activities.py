"""AS2 activities: the activity itself and its embedded object, inner activity or actor;
types we do not handle are read leniently so the caller can acknowledge and ignore them."""

from __future__ import annotations

from typing import Any

from fedcomments.ap.parse_actors import _actor
from fedcomments.ap.parse_objects import _object
from fedcomments.ap.parse_values import (
    ACTIVITY_TYPES,
    ACTOR_TYPES,
    MAX_OBJECTS,
    MAX_SUMMARY,
    OBJECT_TYPES,
    _cap,
    _check_depth,
    _checked,
    _datetime,
    _id_of,
    _iri,
    _list,
    _natural,
    _optional_iri,
    _pick_actor,
    _recipients,
    _reference,
    _required_iri,
    _text,
    _type,
    _types,
)
from fedcomments.ap.types import IncomingActivity, IncomingActor, IncomingObject
from fedcomments.errors import ProtocolError


def _activity(node: dict[str, Any], followers_url: str | None, depth: int) -> IncomingActivity:
    _check_depth(depth)
    activity_id = _required_iri(node, "id")
    kind = _type(node)
    if kind in OBJECT_TYPES or kind in ACTOR_TYPES:
        raise ProtocolError(f"type {kind!r} is not an activity type")
    actor = _pick_actor(node.get("actor"), "actor")
    if actor is None:
        raise ProtocolError("actor is missing")
    if kind not in ACTIVITY_TYPES:
        return _unknown_activity(node, activity_id, kind, actor)
    objects = _list(node.get("object"))[:MAX_OBJECTS]
    object_ids = tuple(_checked(i, "object") for i in map(_id_of, objects) if i is not None)
    embedded = objects[0] if len(objects) == 1 and isinstance(objects[0], dict) else None
    obj: IncomingObject | None = None
    inner: IncomingActivity | None = None
    object_actor: IncomingActor | None = None
    # An embedded node without a type is only a reference (pyld would reduce it to its id).
    if embedded is not None and _types(embedded):
        embedded_kind = _type(embedded)
        try:
            if embedded_kind in ACTIVITY_TYPES:
                inner = _activity(embedded, None, depth + 1)
            elif embedded_kind in ACTOR_TYPES:
                object_actor = _actor(embedded, depth + 1)
            else:
                obj = _object(embedded, followers_url, depth + 1, actor)
        except ProtocolError as exc:
            raise ProtocolError(f"object: {exc}") from exc
    content, _language = _natural(node, "content")
    if content is None:
        # Misskey names the reaction in content and in _misskey_reaction; read either.
        content = _text(node.get("_misskey_reaction"))
    return IncomingActivity(
        id=activity_id,
        type=kind,
        actor=actor,
        object_id=object_ids[0] if object_ids else None,
        object=obj,
        inner=inner,
        target=_reference(node, "target"),
        to=_recipients(node, "to"),
        cc=_recipients(node, "cc"),
        published=_datetime(node.get("published")),
        content=_cap(content, MAX_SUMMARY),
        object_ids=object_ids,
        object_actor=object_actor,
    )


def _unknown_activity(node: dict[str, Any], activity_id: str, kind: str,
                      actor: str) -> IncomingActivity:
    """An activity of a type we do not handle, read leniently: nothing in it is acted upon,
    so an odd object (an embedded quote, a custom emoji) must not turn it into a 400."""
    object_ids = tuple(iri for i in map(_id_of, _list(node.get("object"))[:MAX_OBJECTS])
                       if i is not None and (iri := _iri(i)) is not None)
    return IncomingActivity(
        id=activity_id,
        type=kind,
        actor=actor,
        object_id=object_ids[0] if object_ids else None,
        object=None,
        inner=None,
        target=_optional_iri(node.get("target")),
        to=_recipients(node, "to"),
        cc=_recipients(node, "cc"),
        published=_datetime(node.get("published")),
        content=None,
        object_ids=object_ids,
    )
