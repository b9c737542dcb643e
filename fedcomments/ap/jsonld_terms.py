"""Just enough of JSON-LD 1.1 context processing for the fast path to compare what terms
mean: a minimal active context, term definitions (§4.2.2) and IRI expansion (§5.2.2); plus
the nesting bound checked before either the fast path or pyld recurses. Whatever it cannot
vouch for raises _Bail, and pyld decides."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fedcomments.ap.jsonld_contexts import _unalias
from fedcomments.errors import ProtocolError

_GEN_DELIMS = tuple(":/?#[]@")
_MAX_DEPTH = 32
_MAX_CONTEXT_TERMS = 256


class _Bail(Exception):
    """The fast path cannot vouch for this document; pyld decides."""


@dataclass(frozen=True)
class _Term:
    """The parts of a JSON-LD term definition that change what a value means."""

    iri: str | None
    type: str | None = None
    container: tuple[str, ...] = ()
    language: str | None = None
    scoped: str | None = None
    prefix: bool = False
    protected: bool = False

    def meaning(self, flexible: bool) -> tuple[Any, ...]:
        kind = None if flexible and self.type == "@id" else self.type
        return (self.iri, kind, self.container, self.language, self.scoped)


@dataclass
class _Active:
    """A minimal active context: enough of JSON-LD 1.1 context processing to compare terms."""

    terms: dict[str, _Term]
    vocab: str | None = None
    language: str | None = None

    def copy(self) -> _Active:
        return _Active(dict(self.terms), self.vocab, self.language)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _define(active: _Active, local: dict[str, Any], term: str, defined: dict[str, bool],
            trusted: bool, protected: bool = False) -> None:
    """Create one term definition (JSON-LD 1.1 §4.2.2, the parts that matter here)."""
    if defined.get(term) is True:
        return
    if term in defined:
        raise _Bail  # cyclic definition
    if ":" in term and not trusted:
        raise _Bail  # a compact-IRI term must expand to itself; pyld checks that
    defined[term] = False
    previous = active.terms.get(term)
    value = local[term]
    new: _Term
    if value is None:
        new = _Term(iri=None)
    elif isinstance(value, str):
        iri = _expand(active, value, vocab=True, local=local, defined=defined, trusted=trusted)
        prefix = ":" not in term and iri is not None and iri.endswith(_GEN_DELIMS)
        new = _Term(iri=iri, prefix=prefix, protected=protected)
    elif isinstance(value, dict):
        if {"@reverse", "@nest", "@index", "@direction"} & value.keys():
            raise _Bail
        if "@context" in value and not trusted:
            raise _Bail  # a scoped context from the sender could redefine what we read
        if "@id" in value:
            raw = value["@id"]
            iri = None if raw is None else _expand(
                active, raw, vocab=True, local=local, defined=defined, trusted=trusted)
        else:
            iri = _expand(active, term, vocab=True, local=local, defined=defined,
                          trusted=trusted)
        kind = value.get("@type")
        if kind is not None:
            kind = _expand(active, kind, vocab=True, local=local, defined=defined,
                           trusted=trusted)
            if kind is None or kind.startswith("_:") or not (kind.startswith("@") or ":" in kind):
                raise _Bail  # a relative or blank @type: pyld refuses the context
        containers = _as_list(value.get("@container"))
        language = value.get("@language")
        if not all(isinstance(c, str) for c in containers) \
                or not isinstance(language, str | None):
            raise _Bail
        container = tuple(sorted(c for c in containers if c != "@set"))
        scoped = value.get("@context")
        new = _Term(
            iri=iri,
            type=kind,
            container=container,
            language=language.lower() if isinstance(language, str) else language,
            scoped=None if scoped is None else json.dumps(scoped, sort_keys=True),
            prefix=value.get("@prefix") is True,
            protected=value.get("@protected", protected) is True,
        )
    else:
        raise _Bail
    if previous is not None and previous.protected:
        if previous.meaning(False) != new.meaning(False):
            raise _Bail  # pyld refuses to redefine a protected term; let it say so
        new = previous  # an identical redefinition keeps the protection (JSON-LD 1.1)
    active.terms[term] = new
    defined[term] = True


def _expand(active: _Active, value: str, *, vocab: bool, local: dict[str, Any] | None = None,
            defined: dict[str, bool] | None = None, trusted: bool = True) -> str | None:
    """IRI expansion (JSON-LD 1.1 §5.2.2) against the minimal active context."""
    if not isinstance(value, str):
        raise _Bail  # invalid JSON-LD: pyld will say so
    if value.startswith("@"):
        return value
    if local is not None and defined is not None and value in local and not defined.get(value):
        _define(active, local, value, defined, trusted)
    if vocab and value in active.terms:
        iri = active.terms[value].iri
        return None if iri is None else _unalias(iri)
    if ":" in value[1:]:
        prefix, suffix = value.split(":", 1)
        if prefix == "_" or suffix.startswith("//"):
            return value
        if local is not None and defined is not None and prefix in local \
                and not defined.get(prefix):
            _define(active, local, prefix, defined, trusted)
        definition = active.terms.get(prefix)
        if definition is not None and definition.iri is not None and definition.prefix:
            return _unalias(definition.iri + suffix)
        if definition is not None:
            raise _Bail  # a term that is not a prefix: pyld may call it confused, let it
        return value
    if vocab and active.vocab is not None:
        return active.vocab + value
    return value


def _check_depth(value: Any, depth: int = 0, *, in_context: bool = False) -> None:
    """Refuse a document whose objects and arrays, together, nest deeper than _MAX_DEPTH, or
    one of whose contexts defines more than _MAX_CONTEXT_TERMS terms.

    Arrays count like objects, and contexts are walked too: pyld (and json.dumps of a
    context) recurse once per level of either, so ``[[[…]]]`` five hundred deep exhausts
    Python's recursion limit inside pyld. Term definitions recurse once per term they
    depend on (``"a": "b:x", "b": "c:x", …``), on both paths, hence the bound on their
    number; real contexts define a few dozen. Iterative, so the check cannot recurse.
    """
    stack: list[tuple[Any, int, bool]] = [(value, depth, in_context)]
    while stack:
        item, level, context = stack.pop()
        if level > _MAX_DEPTH:
            raise ProtocolError(f"document nests deeper than {_MAX_DEPTH} levels")
        if isinstance(item, dict):
            if context and len(item) > _MAX_CONTEXT_TERMS:
                raise ProtocolError(f"a @context defines more than {_MAX_CONTEXT_TERMS} terms")
            stack.extend((v, level + 1, context or k == "@context") for k, v in item.items()
                         if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, level + 1, context) for v in item if isinstance(v, dict | list))
