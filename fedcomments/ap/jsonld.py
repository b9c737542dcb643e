"""JSON-LD normalisation of incoming documents to one canonical context: Normalizer.

pyld is used here and nowhere else, and only with bundled context documents: a context URL
never causes a network request. The fast path (jsonld_fast.py) skips pyld when a document's
context provably gives the terms ``parse.py`` reads their canonical meaning; pyld, here, is
the normaliser of record for every other document. The contexts themselves are in
jsonld_contexts.py.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fedcomments.ap.jsonld_contexts import CANONICAL_CONTEXT, _unalias, bundled_file
from fedcomments.ap.jsonld_fast import FastPath
from fedcomments.ap.jsonld_terms import _Active, _as_list, _check_depth
from fedcomments.errors import ProtocolError

_CACHE_SIZE = 256


class _Bounded(OrderedDict[str, Any]):
    """A small LRU mapping: remote documents must not grow our caches without bound."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        super().__init__()
        self._size = size

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self._size:
            self.popitem(last=False)


class Normalizer(FastPath):
    """Normalise AS2 documents; owns its document loader and caches (one per runtime)."""

    def __init__(self, *, fast_path: bool = True, contexts_dir: Path | None = None) -> None:
        self.fast_path = fast_path
        self._dir = contexts_dir or Path(__file__).with_name("contexts")
        self._documents: dict[str, Any] = {}
        self._pyld_cache = _Bounded()
        self._verdicts = _Bounded()
        self._deltas: dict[str, _Active] = {}
        self._canonical: _Active | None = None
        self._read_iris: frozenset[str] = frozenset()

    # -- document loader -------------------------------------------------------------------

    def _bundled(self, name: str) -> Any:
        if name not in self._documents:
            self._documents[name] = json.loads((self._dir / name).read_text(encoding="utf-8"))
        return self._documents[name]

    def load_document(self, url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """pyld document loader: bundled contexts only; unknown URLs are empty contexts.

        An unknown context is read as ``{}`` rather than refused: Kroeg, Funkwhale and others
        reference their own context URLs, and their documents must still parse. The terms such
        a context would define fall back to AS2's ``@vocab`` (``_:``) and keep their names,
        so nothing we read can be redefined by a context we cannot see.
        """
        name = bundled_file(url)
        document = self._bundled(name) if name else {"@context": {}}
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": document,
            "contentType": "application/ld+json",
            "tag": "static",
        }

    # -- public API ------------------------------------------------------------------------

    def normalize(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The document compacted to CANONICAL_CONTEXT, by the fast path when it is safe."""
        if self.fast_path:
            fast = self.normalize_fast(doc)
            if fast is not None:
                return fast
        return self.normalize_slow(doc)

    def normalize_slow(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Expand with pyld (the document's contexts after ours), then compact to ours."""
        from pyld import jsonld
        from pyld.context_resolver import ContextResolver

        if not isinstance(doc, dict):
            raise ProtocolError("document is not a JSON object")
        _check_depth(doc)
        source = dict(doc)
        source["@context"] = [*CANONICAL_CONTEXT, *_as_list(doc.get("@context"))]
        options: dict[str, Any] = {
            "documentLoader": self.load_document,
            "contextResolver": ContextResolver(self._pyld_cache, self.load_document),
            "base": None,  # relative IRIs stay relative (pyld would invent a base)
        }
        try:
            expanded = _rename_iris(jsonld.expand(source, dict(options)))
            compacted = jsonld.compact(expanded, list(CANONICAL_CONTEXT), dict(options))
        except (jsonld.JsonLdError, ValueError) as exc:
            # pyld raises ValueError for IRIs it cannot resolve (we give it no base).
            raise ProtocolError(f"invalid JSON-LD: {exc}") from exc
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            # pyld 3.3 trips over some valid input ({"@language": null} raises KeyError);
            # a document we cannot read is the sender's problem, not a crash.
            raise ProtocolError(f"JSON-LD processing failed: {exc!r}") from exc
        if not isinstance(compacted, dict):
            raise ProtocolError("JSON-LD document did not compact to one object")
        return compacted


def _rename_iris(value: Any) -> Any:
    """Apply _IRI_ALIASES to the property names of an expanded document."""
    if isinstance(value, list):
        return [_rename_iris(v) for v in value]
    if isinstance(value, dict):
        return {_unalias(k): _rename_iris(v) for k, v in value.items()}
    return value


__all__ = ["Normalizer"]
