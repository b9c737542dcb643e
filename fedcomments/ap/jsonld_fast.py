"""The fast path: a pure-Python check that a document's contexts give every term parse.py
reads its canonical meaning and its values shapes pyld would accept, so the document can
skip pyld. FastPath is the base of jsonld.Normalizer, which owns its caches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from fedcomments.ap.jsonld_contexts import CANONICAL_CONTEXT, READ_TERMS, bundled_file
from fedcomments.ap.jsonld_terms import (
    _MAX_DEPTH,
    _Active,
    _as_list,
    _Bail,
    _check_depth,
    _define,
    _expand,
)
from fedcomments.errors import ProtocolError

if TYPE_CHECKING:
    from fedcomments.ap.jsonld import _Bounded

_FLEXIBLE_ID_TERMS = frozenset({"conversation"})
_CONTEXT_KEYWORDS = frozenset({"@vocab", "@language", "@version", "@protected"})
_MAX_VERDICTS = 2048

_Scope = tuple[_Active, dict[str, int]]


class FastPath:
    """The fast-path half of Normalizer; the attributes below are set by its __init__."""

    _verdicts: _Bounded
    _deltas: dict[str, _Active]
    _canonical: _Active | None
    _read_iris: frozenset[str]
    _bundled: Callable[[str], Any]

    def normalize_fast(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The document with the canonical context, or None when only pyld may decide.

        Keys other than READ_TERMS keep the sender's spelling here, while pyld would compact
        them; parse.py reads only READ_TERMS, so both give the same parse result.
        """
        if not isinstance(doc, dict):
            raise ProtocolError("document is not a JSON object")
        try:
            self._check_tree(doc)
        except _Bail:
            return None
        result = dict(doc)
        result["@context"] = list(CANONICAL_CONTEXT)
        return result

    def _context_for(self, key: str, context: Any, parent: _Active) -> _Scope:
        """The active context after ``context``, cached under ``key`` (its whole chain)."""
        cached = self._verdicts.get(key)
        if cached is None:
            try:
                active = parent
                for entry in _as_list(context):
                    active = self._process(active, entry, trusted=False)
                if active.vocab != "_:" or active.language not in (None, "und"):
                    raise _Bail
                cached = (active, {})
            except _Bail:
                cached = False
            self._verdicts[key] = cached
        if cached is False:
            raise _Bail
        scope: _Scope = cached
        return scope

    def _base(self) -> _Active:
        if self._canonical is None:
            active = _Active({})
            for entry in CANONICAL_CONTEXT:
                active = self._process(active, entry, trusted=True)
            self._canonical = active
            iris = {_expand(active, term, vocab=True) for term in READ_TERMS}
            self._read_iris = frozenset(i for i in iris if i is not None)
        return self._canonical

    def _delta(self, name: str) -> _Active:
        """A bundled context processed on its own: each is self-contained (it defines the
        prefixes it uses), so applying it anywhere sets exactly these terms."""
        if name not in self._deltas:
            active = _Active({})
            for inner in _as_list(self._bundled(name).get("@context")):
                active = self._process(active, inner, trusted=True)
            self._deltas[name] = active
        return self._deltas[name]

    @staticmethod
    def _apply(active: _Active, delta: _Active) -> _Active:
        result = active.copy()
        for term, definition in delta.terms.items():
            previous = result.terms.get(term)
            if previous is not None and previous.protected:
                if previous.meaning(False) != definition.meaning(False):
                    raise _Bail
                continue  # an identical redefinition keeps the protection (JSON-LD 1.1)
            result.terms[term] = definition
        if delta.vocab is not None:
            result.vocab = delta.vocab
        return result

    def _process(self, active: _Active, entry: Any, *, trusted: bool) -> _Active:
        if isinstance(entry, str):
            name = bundled_file(entry)
            if name is not None:
                return self._apply(active, self._delta(name))
            if entry.startswith(("https://", "http://")):
                return active  # unknown context: empty, as the loader serves it
            raise _Bail  # a relative reference: pyld refuses it

        if not isinstance(entry, dict):
            raise _Bail  # null resets the context; numbers and the like are invalid
        if any(k.startswith("@") and k not in _CONTEXT_KEYWORDS for k in entry):
            raise _Bail  # @base, @import, @direction, @propagate or invalid: pyld decides
        result = active.copy()
        if "@vocab" in entry:
            result.vocab = entry["@vocab"]
        if "@language" in entry:
            lang = entry["@language"]
            if lang is not None and not isinstance(lang, str):
                raise _Bail
            result.language = lang.lower() if lang else None
        defined: dict[str, bool] = {}
        protected = entry.get("@protected") is True
        for term in entry:
            if not term.startswith("@"):
                _define(result, entry, term, defined, trusted, protected)
        return result

    def _check_tree(self, doc: dict[str, Any]) -> None:
        """Bail unless every key, value shape and type reads as it would after pyld.

        Embedded @contexts (Fedify's signature and proof, Funkwhale's objects) apply to
        their subtree only, as in JSON-LD. Type spellings must survive compaction where
        parse.py reports them (the document, its objects, attachments); elsewhere types are
        only compared with READ_TERMS.
        """
        # Contexts are checked before json.dumps and _process recurse into them; the walk
        # below checks the depth of everything else it visits (lists included).
        _check_depth(doc.get("@context"), 1, in_context=True)
        top = _context_key(doc.get("@context"))
        stack: list[tuple[Any, int, str, _Scope, bool]] = [
            (doc, 0, top, self._context_for(top, doc.get("@context"), self._base()), True)
        ]
        while stack:
            value, depth, key, scope, strict = stack.pop()
            if depth > _MAX_DEPTH:
                raise ProtocolError(f"document nests deeper than {_MAX_DEPTH} levels")
            if isinstance(value, list):
                stack.extend((v, depth + 1, key, scope, strict) for v in value
                             if isinstance(v, dict | list))
                continue
            if depth and "@context" in value:
                if value["@context"] is None:
                    raise _Bail  # resetting the context: pyld decides (and may refuse)
                _check_depth(value["@context"], depth + 1, in_context=True)
                key += "\n" + _context_key(value["@context"])
                scope = self._context_for(key, value["@context"], scope[0])
            for name, item in value.items():
                if name == "@context":
                    continue
                if not _SHAPES[self._verdict(scope, name)](item):
                    raise _Bail
                if isinstance(item, dict | list):
                    reported = strict and name in _REPORTED_TYPES
                    stack.append((item, depth + 1, key, scope, reported))
            prefix = _TYPE_PREFIX if strict else _LOOSE_TYPE_PREFIX
            for kind in _as_list(value.get("type")):
                if self._verdict(scope, prefix + kind) != _ANY:
                    raise _Bail

    def _verdict(self, scope: _Scope, term: str) -> int:
        active, verdicts = scope
        verdict = verdicts.get(term)
        if verdict is None:
            verdict = self._classify(active, term)
            if len(verdicts) < _MAX_VERDICTS:  # senders choose key names; stay bounded
                verdicts[term] = verdict
        return verdict

    def _classify(self, active: _Active, term: str) -> int:
        """What values of ``term`` may look like, or _BAD when pyld must read the document."""
        canonical = self._base()
        if term.startswith(_LOOSE_TYPE_PREFIX):
            kind = term[len(_LOOSE_TYPE_PREFIX):]
            if _expand(active, kind, vocab=True) is None:
                return _BAD  # a type mapped to null: pyld refuses it
            return _ANY if self._term_ok(active, kind) else _BAD
        if term.startswith(_TYPE_PREFIX):
            # pyld compacts type IRIs back to term names ("as:Public" → "Public"), so a type
            # must be a plain term meaning in the document what it means canonically.
            kind = term[len(_TYPE_PREFIX):]
            if not kind or ":" in kind or (kind not in READ_TERMS and (
                    _expand(active, kind, vocab=True) != _expand(canonical, kind, vocab=True))):
                return _BAD
            return _ANY if self._term_ok(active, kind) else _BAD
        if not self._term_ok(active, term):
            return _BAD
        definition = active.terms.get(term)
        if definition is None:
            return _ANY
        if definition.iri == "@id":
            return _ID
        if definition.iri == "@type":
            return _TYPE
        if "@language" in definition.container:
            return _LANGUAGE_MAP
        if definition.type in ("@id", "@vocab"):
            return _IRI
        return _LITERAL if definition.type is not None else _ANY

    def _term_ok(self, active: _Active, term: str) -> bool:
        if term.startswith("@"):
            return False
        canonical = self._base()
        if term in READ_TERMS:
            mine, theirs = active.terms.get(term), canonical.terms.get(term)
            if mine is None or theirs is None:
                return mine is theirs and active.vocab == canonical.vocab
            flexible = term in _FLEXIBLE_ID_TERMS
            return mine.meaning(flexible) == theirs.meaning(flexible)
        return _expand(active, term, vocab=True) not in self._read_iris


# Value shapes pyld accepts for each kind of term; anything else goes to pyld to refuse.
_BAD, _ANY, _ID, _TYPE, _IRI, _LITERAL, _LANGUAGE_MAP = range(7)
_TYPE_PREFIX = "\x00type:"
_LOOSE_TYPE_PREFIX = "\x00loose:"
# Keys under which parse.py reports the type of the embedded node.
_REPORTED_TYPES = frozenset({"object", "attachment"})


def _context_key(context: Any) -> str:
    """A canonical text of a @context value, the key its processed form is cached under.

    orjson (sorted keys) is an order of magnitude quicker than json.dumps for Mastodon's
    context, read on every activity. It writes NaN and infinities as null and refuses
    integers past 64 bits, so any output holding a null, and any refusal, falls back to
    json.dumps; the prefixes keep keys of the two spellings apart.
    """
    try:
        fast = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        fast = b"null"
    if b"null" not in fast:
        return "o" + fast.decode()
    return "j" + json.dumps(context, sort_keys=True)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_SHAPES: dict[int, Callable[[Any], bool]] = {
    _BAD: lambda value: False,
    _ANY: lambda value: True,
    _ID: lambda value: isinstance(value, str) and not value.startswith("@"),
    _TYPE: lambda value: all(isinstance(v, str) for v in _items(value)),
    _IRI: lambda value: all(v is None or isinstance(v, dict)
                            or (isinstance(v, str) and not v.startswith("@"))
                            for v in _items(value)),
    _LITERAL: lambda value: not any(isinstance(v, dict) for v in _items(value)),
    _LANGUAGE_MAP: lambda value: value is None or (isinstance(value, dict) and all(
        v is None or isinstance(v, str) for m in value.values() for v in _items(m))),
}
