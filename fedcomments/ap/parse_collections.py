"""AS2 collections read as listings: replies collections (Mastodon's embedded first page)
and FEP-7888 / FEP-f228 conversation (`context`) collections, paged or inline."""

from __future__ import annotations

from typing import Any

from fedcomments.ap.parse_values import (
    ACTIVITY_TYPES,
    _check_depth,
    _count,
    _first,
    _id_of,
    _list,
    _optional_iri,
    _pick_actor,
    _type,
    _types,
)
from fedcomments.ap.types import IncomingCollection
from fedcomments.errors import ProtocolError

COLLECTION_TYPES = frozenset({
    "Collection", "OrderedCollection", "CollectionPage", "OrderedCollectionPage",
})
#: Items read from one document (a collection with its embedded first page, or a page).
MAX_ITEMS = 500


def _collection(node: dict[str, Any], depth: int) -> IncomingCollection:
    _check_depth(depth)
    kind = _type(node)
    if kind not in COLLECTION_TYPES:
        raise ProtocolError(f"type {kind!r} is not a collection")
    items = _item_ids(node)
    following = _optional_iri(node.get("next"))
    first = _first(node.get("first"))
    if isinstance(first, dict) and _types(first):
        # Mastodon embeds the first page of a replies collection; its items come first.
        page = _collection(first, depth + 1)
        items = (*items, *page.items)
        following = following or page.next
    elif following is None:
        following = _optional_iri(first)
    return IncomingCollection(
        id=_optional_iri(node.get("id")),
        type=kind,
        attributed_to=_pick_actor(node.get("attributedTo"), "attributedTo"),
        total_items=_count(node.get("totalItems")),
        items=tuple(dict.fromkeys(items))[:MAX_ITEMS],
        next=following,
    )


def _item_ids(node: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("orderedItems", "items"):
        for item in _list(node.get(key))[:MAX_ITEMS]:
            if isinstance(item, dict) and ACTIVITY_TYPES.intersection(_types(item)):
                # A collection of activities (FEP-f228): a Create stands for its object.
                if "Create" not in _types(item):
                    continue
                item = _first(item.get("object"))
            found_id = _id_of(item)
            if found_id is not None and (iri := _optional_iri(found_id)) is not None:
                found.append(iri)
    return tuple(found)
